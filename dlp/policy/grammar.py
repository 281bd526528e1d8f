"""The condition grammar: YAML mappings -> condition objects, with every problem
recorded at its file, line and field.

A condition is a mapping of kinds (`findings`, `external`, `any`, ...); several kinds
in one mapping must all hold. See policies/README.md for the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dlp.model import Confidence
from dlp.policy.conditions import (
    AllOf,
    AnyOf,
    AttributeTest,
    ChannelCondition,
    ClientCondition,
    Condition,
    CrmCondition,
    EdmCondition,
    ExternalCondition,
    FindingsCondition,
    FlagsCondition,
    NotCondition,
    OutboundCondition,
    PartsCondition,
    RecipientsCondition,
    SenderCondition,
    SizeCondition,
)
from dlp.policy.parse import Place
from dlp.policy.source import LineMap

__all__ = ["parse_condition"]

_DETECTOR_ID = re.compile(r"^[a-z0-9*?\[\]][a-z0-9*?\[\]:_.-]*$")
_CONFIDENCES = ("low", "medium", "high")


def parse_condition(value: Any, place: Place) -> Condition | None:
    """A condition from YAML: a mapping of kinds (several kinds mean all of them)."""
    mapping = place.mapping(value, tuple(_PARSERS))
    if mapping is None:
        return None
    if not mapping:
        place.error("empty condition")
        return None
    members = [_PARSERS[key](mapping[key], place.key(mapping, key)) for key in mapping]
    if any(m is None for m in members):
        return None
    ready = tuple(m for m in members if m is not None)
    return ready[0] if len(ready) == 1 else AllOf(ready)


def _parse_list(value: Any, place: Place) -> tuple[Condition, ...] | None:
    if not isinstance(value, list) or not value:
        place.error("expected a non-empty list of conditions")
        return None
    members = [
        parse_condition(item, place.child(f"[{i}]", _line(item, place))) for i, item in enumerate(value)
    ]
    if any(m is None for m in members):
        return None
    return tuple(m for m in members if m is not None)


def _parse_all(value: Any, place: Place) -> Condition | None:
    members = _parse_list(value, place)
    return AllOf(members) if members is not None else None


def _parse_any(value: Any, place: Place) -> Condition | None:
    members = _parse_list(value, place)
    return AnyOf(members) if members is not None else None


def _parse_not(value: Any, place: Place) -> Condition | None:
    member = parse_condition(value, place)
    return NotCondition(member) if member is not None else None


_FINDINGS_KEYS = (
    "detectors",
    "categories",
    "min_confidence",
    "max_confidence",
    "min_count",
    "min_distinct",
    "per",
    "attributes",
)


def _parse_findings(value: Any, place: Place) -> Condition | None:
    mapping = place.mapping(value, _FINDINGS_KEYS)
    if mapping is None:
        return None
    ok = True
    detectors: tuple[str, ...] = ()
    if "detectors" in mapping:
        got = _detector_ids(mapping["detectors"], place.key(mapping, "detectors"))
        ok = ok and got is not None
        detectors = got or ()
    categories = _lower_texts(mapping, "categories", place)
    confidence = Confidence.LOW
    if "min_confidence" in mapping:
        label = place.key(mapping, "min_confidence").choice(mapping["min_confidence"], _CONFIDENCES)
        ok = ok and label is not None
        confidence = Confidence.parse(label or "low")
    highest = Confidence.HIGH
    if "max_confidence" in mapping:
        label = place.key(mapping, "max_confidence").choice(mapping["max_confidence"], _CONFIDENCES)
        ok = ok and label is not None
        highest = Confidence.parse(label or "high")
    min_count = _count(mapping, "min_count", place, 1, default=1)
    min_distinct = _count(mapping, "min_distinct", place, 1, default=0)
    per = "item"
    if "per" in mapping:
        per = place.key(mapping, "per").choice(mapping["per"], ("item", "part")) or ""
    attributes: tuple[AttributeTest, ...] = ()
    if "attributes" in mapping:
        parsed = _parse_attributes(mapping["attributes"], place.key(mapping, "attributes"))
        ok = ok and parsed is not None
        attributes = parsed or ()
    if not ok or categories is None or min_count is None or min_distinct is None or not per:
        return None
    return FindingsCondition(
        detectors=detectors,
        categories=categories,
        min_confidence=confidence,
        max_confidence=highest,
        min_count=min_count,
        min_distinct=min_distinct,
        per_part=per == "part",
        attributes=attributes,
    )


def _parse_attributes(value: Any, place: Place) -> tuple[AttributeTest, ...] | None:
    if not isinstance(value, dict) or not value:
        place.error("expected a mapping of attribute names to a value, a list or {min, max}")
        return None
    out = []
    for name, spec in value.items():
        sub = place.key(value, name) if isinstance(value, LineMap) else place.child(str(name))
        if isinstance(spec, dict):
            bounds = sub.mapping(spec, ("min", "max"))
            if bounds is None:
                return None
            if not bounds:
                sub.error("expected 'min' and/or 'max'")
                return None
            low = sub.key(bounds, "min").count(bounds["min"]) if "min" in bounds else None
            high = sub.key(bounds, "max").count(bounds["max"]) if "max" in bounds else None
            if ("min" in bounds and low is None) or ("max" in bounds and high is None):
                return None
            out.append(AttributeTest(name, minimum=low, maximum=high))
        else:
            values = sub.texts(spec)
            if values is None:
                return None
            out.append(AttributeTest(name, values=tuple(v.lower() for v in values)))
    return tuple(out)


def _parse_edm(value: Any, place: Place) -> Condition | None:
    mapping = place.mapping(value, ("index", "min_records", "min_columns"))
    if mapping is None:
        return None
    index = place.key(mapping, "index").text(mapping["index"]) if "index" in mapping else None
    records = _count(mapping, "min_records", place, 1, default=1)
    columns = _count(mapping, "min_columns", place, 1, default=1)
    if ("index" in mapping and index is None) or records is None or columns is None:
        return None
    return EdmCondition(index=index, min_records=records, min_columns=columns)


def _parse_crm(value: Any, place: Place) -> Condition | None:
    mapping = place.mapping(value, ("export_header", "systems", "min_rows"))
    if mapping is None:
        return None
    header = False
    if "export_header" in mapping:
        got = place.key(mapping, "export_header").boolean(mapping["export_header"])
        if got is None:
            return None
        header = got
    systems = _lower_texts(mapping, "systems", place)
    rows = _count(mapping, "min_rows", place, 1, default=None)
    if systems is None or ("min_rows" in mapping and rows is None):
        return None
    if systems and not header:
        place.key(mapping, "systems").error("'systems' needs 'export_header: true'")
        return None
    if not header and rows is None:
        place.error("give 'export_header: true' and/or 'min_rows'")
        return None
    return CrmCondition(export_header=header, systems=systems, min_rows=rows)


def _parse_channel(value: Any, place: Place) -> Condition | None:
    channels = place.texts(value)
    if channels is None:
        return None
    bad = [c for c in channels if c.lower() not in ("smtp", "http", "cli")]
    if bad:
        place.error(f"unknown channel {bad[0]!r}; expected smtp, http or cli")
        return None
    return ChannelCondition(tuple(c.lower() for c in channels))


def _addresses_domains(
    value: Any, place: Place, extra: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    mapping = place.mapping(value, ("addresses", "domains", *extra))
    if mapping is None:
        return None
    addresses = _lower_texts(mapping, "addresses", place)
    domains = _lower_texts(mapping, "domains", place)
    if addresses is None or domains is None:
        return None
    if not addresses and not domains:
        place.error("give 'addresses' and/or 'domains'")
        return None
    return addresses, tuple(d.lstrip("@.") for d in domains)


def _parse_sender(value: Any, place: Place) -> Condition | None:
    got = _addresses_domains(value, place)
    return SenderCondition(*got) if got is not None else None


def _parse_recipients(value: Any, place: Place) -> Condition | None:
    got = _addresses_domains(value, place, ("every",))
    if got is None:
        return None
    every = False
    if isinstance(value, LineMap) and "every" in value:
        flag = place.key(value, "every").boolean(value["every"])
        if flag is None:
            return None
        every = flag
    return RecipientsCondition(*got, every=every)


def _parse_external(value: Any, place: Place) -> Condition | None:
    flag = place.boolean(value)
    return ExternalCondition(flag) if flag is not None else None


def _parse_outbound(value: Any, place: Place) -> Condition | None:
    flag = place.boolean(value)
    return OutboundCondition(flag) if flag is not None else None


def _parse_client(value: Any, place: Place) -> Condition | None:
    clients = place.texts(value)
    return ClientCondition(tuple(c.lower() for c in clients)) if clients is not None else None


def _parse_parts(value: Any, place: Place) -> Condition | None:
    mapping = place.mapping(value, ("types", "names", "extensions", "flags", "exclude_types"))
    if mapping is None:
        return None
    types = _lower_texts(mapping, "types", place)
    names = _lower_texts(mapping, "names", place)
    extensions = _lower_texts(mapping, "extensions", place)
    flags = _lower_texts(mapping, "flags", place)
    excluded = _lower_texts(mapping, "exclude_types", place)
    if types is None or names is None or extensions is None or flags is None or excluded is None:
        return None
    if not (types or names or extensions or flags):
        place.error("give 'types', 'names', 'extensions' and/or 'flags'")
        return None
    if not _flags_known(flags, place.key(mapping, "flags")):
        return None
    dotted = tuple(e if e.startswith(".") else "." + e for e in extensions)
    return PartsCondition(types=types, names=names, extensions=dotted, flags=flags, exclude_types=excluded)


def _parse_size(value: Any, place: Place) -> Condition | None:
    mapping = place.mapping(value, ("min", "max"))
    if mapping is None:
        return None
    low = place.key(mapping, "min").size(mapping["min"]) if "min" in mapping else None
    high = place.key(mapping, "max").size(mapping["max"]) if "max" in mapping else None
    if ("min" in mapping and low is None) or ("max" in mapping and high is None):
        return None
    if low is None and high is None:
        place.error("give 'min' and/or 'max'")
        return None
    return SizeCondition(minimum=low, maximum=high)


_FLAG_NAMES = "encrypted, corrupt, unsupported, truncated or limit:*"
_FLAG = re.compile(r"^(encrypted|corrupt|unsupported|truncated|limit:[a-z*?]+)$")


def _parse_flags(value: Any, place: Place) -> Condition | None:
    flags = place.texts(value)
    if flags is None or not _flags_known(flags, place):
        return None
    return FlagsCondition(tuple(f.lower() for f in flags))


def _flags_known(flags: tuple[str, ...], place: Place) -> bool:
    for flag in flags:
        if not _FLAG.match(flag.lower()):
            place.error(f"unknown flag {flag!r}; expected {_FLAG_NAMES}")
            return False
    return True


_PARSERS: dict[str, Callable[[Any, Place], Condition | None]] = {
    "all": _parse_all,
    "any": _parse_any,
    "not": _parse_not,
    "findings": _parse_findings,
    "edm": _parse_edm,
    "crm": _parse_crm,
    "channel": _parse_channel,
    "sender": _parse_sender,
    "recipients": _parse_recipients,
    "external": _parse_external,
    "outbound": _parse_outbound,
    "client": _parse_client,
    "parts": _parse_parts,
    "size": _parse_size,
    "flags": _parse_flags,
}


def _detector_ids(value: Any, place: Place) -> tuple[str, ...] | None:
    ids = place.texts(value)
    if ids is None:
        return None
    for detector in ids:
        if not _DETECTOR_ID.match(detector):
            place.error(f"{detector!r} is not a detector id (kebab-case, 'edm:<index>', globs allowed)")
            return None
    return ids


def _lower_texts(mapping: LineMap, key: str, place: Place) -> tuple[str, ...] | None:
    if key not in mapping:
        return ()
    got = place.key(mapping, key).texts(mapping[key])
    return tuple(t.lower() for t in got) if got is not None else None


def _count(mapping: LineMap, key: str, place: Place, minimum: int, default: int | None) -> int | None:
    if key not in mapping:
        return default
    return place.key(mapping, key).count(mapping[key], minimum)


def _line(value: Any, place: Place) -> int:
    return int(getattr(value, "line", place.line))
