"""Detector definitions: one YAML file per detector, checked field by field as it loads.

A definition is data only (see `detectors/README.md` for the format). Loading checks every
key against the schema and fails with a `DefinitionError` naming the file, the line (from
the YAML node marks) and the field for an unknown key, a missing or mistyped value, a
regex that does not compile, an unknown validator, filter, mask or aggregate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

from dlp.detect.dictionary import read_terms
from dlp.detect.masking import MASKS, NORMALISERS
from dlp.detect.validators import VALIDATORS
from dlp.errors import DefinitionError
from dlp.model import Confidence

__all__ = [
    "ANCHORS",
    "CATEGORIES",
    "PATTERN_ANCHORS",
    "REGULATIONS",
    "Definition",
    "DictionaryDef",
    "PatternDef",
    "load_definition",
    "load_folders",
]

# libyaml's parser when PyYAML was built with it (several times faster; nodes carry the same
# marks, so errors still name the line).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CATEGORIES = ("pii", "pci", "phi", "financial", "secret", "crm")
REGULATIONS = ("gdpr", "ccpa", "hipaa", "pci-dss", "glba")
ANCHORS = ("digits", "email", "literal", "letters-digits", "hex-colon", "keyword", "dictionary", "table")
# Anchors a single pattern may name instead of its detector's: those that need no other field.
PATTERN_ANCHORS = ("email", "letters-digits", "hex-colon")
EXCLUDE_ACTIONS = ("drop", "lower")
REGEX_TIMEOUT_SECONDS = 0.05

_TOP_KEYS = {
    "id",
    "description",
    "category",
    "regulations",
    "anchor",
    "literals",
    "digits",
    "dictionary",
    "run_contains",
    "patterns",
    "validator",
    "filters",
    "keywords",
    "column_keywords",
    "negative_keywords",
    "window",
    "negative_window",
    "exclude",
    "exclude_action",
    "confidence",
    "mask",
    "normalise",
    "aggregate",
    "params",
}
_PATTERN_KEYS = {"id", "regex", "confidence", "requires_context", "anchor"}
_CONFIDENCE_KEYS = {"valid", "context", "negative"}
_DICTIONARY_KEYS = {"file", "confidence", "requires_context"}


@dataclass(frozen=True)
class PatternDef:
    """One compiled pattern: its id, the regex (value in the `value` group), base confidence."""

    id: str
    regex: regex.Pattern[str]
    confidence: Confidence
    requires_context: bool
    anchor: str | None = None
    """Where this pattern's candidates come from when not the detector's own anchor
    (an IPv6 pattern of a detector anchored on digits runs at `hex-colon` candidates)."""


@dataclass(frozen=True)
class DictionaryDef:
    """A keyword dictionary: its file, its lower-cased terms and the base confidence of a hit.

    `id` is what a finding's explanation names as its pattern (`dictionary <file name>`).
    """

    id: str
    file: str
    terms: tuple[str, ...]
    confidence: Confidence
    requires_context: bool


@dataclass(frozen=True)
class Definition:
    """A detector definition as loaded and checked; `source` is the file it came from."""

    id: str
    description: str
    category: str
    regulations: tuple[str, ...]
    anchor: str
    source: str
    patterns: tuple[PatternDef, ...] = ()
    literals: tuple[str, ...] = ()
    dictionary: DictionaryDef | None = None
    digits: tuple[int, int] = (1, 64)
    run_contains: str = ""
    validator: str | None = None
    filters: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    column_keywords: tuple[str, ...] = ()
    negative_keywords: tuple[str, ...] = ()
    window: int = 300
    negative_window: int = 20
    exclude: frozenset[str] = frozenset()
    exclude_action: str = "drop"
    raise_valid: int = 1
    raise_context: int = 1
    lower_negative: int = 2
    mask: str = "last4"
    normalise: str = "exact"
    aggregate: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def rules_summary(self) -> str:
        """One line saying how evidence maps to low / medium / high (for `dlp detectors`)."""
        if self.anchor == "table":
            thresholds = self.params.get("thresholds")
            if isinstance(thresholds, dict):
                levels = ", ".join(f"{level} from {rows}" for level, rows in thresholds.items())
                return f"aggregate {self.aggregate}: rows with personal data: {levels}"
            return f"aggregate {self.aggregate}: header signature high; report footer medium"
        sources: list[PatternDef | DictionaryDef] = [*self.patterns]
        if self.dictionary is not None:
            sources.append(self.dictionary)
        bases = ", ".join(
            f"{p.id}={p.confidence.label}{' (needs context)' if p.requires_context else ''}" for p in sources
        )
        parts = [f"{'term' if self.dictionary else 'pattern'} {bases}"]
        if self.validator:
            parts.append(f"validator {self.validator}: pass +{self.raise_valid}, fail drops")
        if self.keywords:
            parts.append(f"keyword within {self.window} chars or column header +{self.raise_context}")
        if self.negative_keywords:
            parts.append(f"negative keyword up to {self.negative_window} chars before -{self.lower_negative}")
        if self.exclude:
            parts.append(
                f"excluded values {'dropped' if self.exclude_action == 'drop' else 'lowered to low'}"
            )
        return "; ".join(parts)


class _Reader:
    """Reads typed values out of composed YAML nodes, raising errors with file and line."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, node: yaml.Node | None, fieldname: str | None, message: str) -> DefinitionError:
        line = node.start_mark.line + 1 if node is not None else None
        return DefinitionError(self.file, line, fieldname, message)

    def mapping(self, node: yaml.Node, fieldname: str | None, allowed: set[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, fieldname, "expected a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                raise self.fail(key_node, fieldname, "keys must be strings")
            name = f"{fieldname}.{key}" if fieldname else key
            if key not in allowed:
                raise self.fail(key_node, name, f"unknown key (allowed: {', '.join(sorted(allowed))})")
            if key in out:
                raise self.fail(key_node, name, "duplicate key")
            out[key] = value_node
        return out

    def string(self, node: yaml.Node, fieldname: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null") or node.value == "":
            raise self.fail(node, fieldname, "expected a non-empty string")
        return str(node.value)

    def choice(self, node: yaml.Node, fieldname: str, choices: Sequence[str]) -> str:
        value = self.string(node, fieldname)
        if value not in choices:
            raise self.fail(node, fieldname, f"'{value}' is not one of: {', '.join(choices)}")
        return value

    def integer(self, node: yaml.Node, fieldname: str, low: int, high: int) -> int:
        if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":int"):
            raise self.fail(node, fieldname, "expected an integer")
        value = int(node.value)
        if not low <= value <= high:
            raise self.fail(node, fieldname, f"must be between {low} and {high}")
        return value

    def boolean(self, node: yaml.Node, fieldname: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or not node.tag.endswith(":bool"):
            raise self.fail(node, fieldname, "expected true or false")
        return bool(yaml.safe_load(node.value))

    def strings(self, node: yaml.Node, fieldname: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, fieldname, "expected a list")
        return [(self.string(item, f"{fieldname}[{i}]"), item) for i, item in enumerate(node.value)]

    def named(self, node: yaml.Node, fieldname: str, registry: Mapping[str, object], what: str) -> str:
        value = self.string(node, fieldname)
        if value not in registry:
            raise self.fail(
                node, fieldname, f"unknown {what} '{value}' (known: {', '.join(sorted(registry))})"
            )
        return value

    def plain(self, node: yaml.Node) -> Any:
        """The node as plain Python data (for aggregate parameters)."""
        if isinstance(node, yaml.MappingNode):
            return {k.value: self.plain(v) for k, v in node.value}
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item) for item in node.value]
        return yaml.constructor.SafeConstructor().construct_object(node)


def _compile(reader: _Reader, node: yaml.Node, fieldname: str) -> regex.Pattern[str]:
    text = reader.string(node, fieldname)
    try:
        compiled = regex.compile(text, regex.VERSION0)
    except (regex.error, OverflowError) as exc:
        raise reader.fail(node, fieldname, f"bad regex: {exc}") from None
    if "value" not in compiled.groupindex:
        raise reader.fail(node, fieldname, "the regex needs a named group 'value'")
    return compiled


def _base(reader: _Reader, fields: dict[str, yaml.Node], name: str) -> tuple[Confidence, bool]:
    """A pattern's or dictionary's base confidence (low by default) and `requires_context`."""
    base = Confidence.LOW
    if "confidence" in fields:
        base = Confidence.parse(
            reader.choice(fields["confidence"], f"{name}.confidence", ("low", "medium", "high"))
        )
    needs = (
        reader.boolean(fields["requires_context"], f"{name}.requires_context")
        if ("requires_context" in fields)
        else False
    )
    return base, needs


def _dictionary(reader: _Reader, node: yaml.Node, folder: Path) -> DictionaryDef:
    """The `dictionary` mapping: its file (relative to the definition's folder) read and checked."""
    fields = reader.mapping(node, "dictionary", _DICTIONARY_KEYS)
    if "file" not in fields:
        raise reader.fail(node, "dictionary.file", "missing")
    name = reader.string(fields["file"], "dictionary.file")
    path = folder / name
    terms = read_terms(path, reader.file, fields["file"].start_mark.line + 1, "dictionary.file")
    base, needs = _base(reader, fields, "dictionary")
    return DictionaryDef(f"dictionary {path.name}", str(path), terms, base, needs)


def _patterns(reader: _Reader, node: yaml.Node) -> tuple[PatternDef, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise reader.fail(node, "patterns", "expected a non-empty list")
    out = []
    seen: set[str] = set()
    for i, item in enumerate(node.value):
        name = f"patterns[{i}]"
        fields = reader.mapping(item, name, _PATTERN_KEYS)
        for required in ("id", "regex"):
            if required not in fields:
                raise reader.fail(item, f"{name}.{required}", "missing")
        pid = reader.string(fields["id"], f"{name}.id")
        if pid in seen:
            raise reader.fail(fields["id"], f"{name}.id", f"duplicate pattern id '{pid}'")
        seen.add(pid)
        base, needs = _base(reader, fields, name)
        anchor = None
        if "anchor" in fields:
            anchor = reader.choice(fields["anchor"], f"{name}.anchor", PATTERN_ANCHORS)
        out.append(PatternDef(pid, _compile(reader, fields["regex"], f"{name}.regex"), base, needs, anchor))
    return tuple(out)


def load_definition(
    path: Path, aggregates: Mapping[str, Callable[[Mapping[str, Any]], str | None]]
) -> Definition:
    """Load and check one definition file. `aggregates` maps each aggregate name to a function
    that checks its `params` (returning an error message or None)."""
    file = str(path)
    reader = _Reader(file)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DefinitionError(file, mark.line + 1 if mark else None, None, f"not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(file, None, None, f"cannot read: {exc}") from None
    if root is None:
        raise DefinitionError(file, None, None, "empty definition")
    f = reader.mapping(root, None, _TOP_KEYS)
    for required in ("id", "description", "category", "anchor"):
        if required not in f:
            raise reader.fail(root, required, "missing")
    did = reader.string(f["id"], "id")
    if did != path.stem:
        raise reader.fail(f["id"], "id", f"'{did}' does not match the file name '{path.stem}'")
    anchor = reader.choice(f["anchor"], "anchor", ANCHORS)
    kw: dict[str, Any] = {}
    if anchor == "table":
        if "aggregate" not in f:
            raise reader.fail(root, "aggregate", "missing (required by anchor: table)")
        name = reader.named(f["aggregate"], "aggregate", aggregates, "aggregate")
        params = reader.plain(f["params"]) if "params" in f else {}
        problem = aggregates[name](params)
        if problem:
            raise reader.fail(f.get("params", f["aggregate"]), "params", problem)
        kw.update(aggregate=name, params=params)
        for key in ("patterns", "validator", "literals", "dictionary"):
            if key in f:
                raise reader.fail(f[key], key, "not allowed with anchor: table")
    elif anchor == "dictionary":
        if "dictionary" not in f:
            raise reader.fail(root, "dictionary", "missing (required by anchor: dictionary)")
        if "patterns" in f:
            raise reader.fail(f["patterns"], "patterns", "not allowed with anchor: dictionary")
        kw["dictionary"] = _dictionary(reader, f["dictionary"], path.parent)
    else:
        if "dictionary" in f:
            raise reader.fail(f["dictionary"], "dictionary", "only allowed with anchor: dictionary")
        if "patterns" not in f:
            raise reader.fail(root, "patterns", "missing")
        kw["patterns"] = _patterns(reader, f["patterns"])
        if all(p.anchor not in (None, anchor) for p in kw["patterns"]):
            message = f"no pattern runs at the detector's anchor ({anchor})"
            raise reader.fail(f["patterns"], "patterns", message)
    if anchor == "literal":
        if "literals" not in f:
            raise reader.fail(root, "literals", "missing (required by anchor: literal)")
        kw["literals"] = tuple(v for v, _ in reader.strings(f["literals"], "literals"))
    elif "literals" in f:
        raise reader.fail(f["literals"], "literals", "only allowed with anchor: literal")
    if anchor == "digits":
        if "digits" not in f:
            raise reader.fail(root, "digits", "missing (required by anchor: digits)")
        bounds = f["digits"]
        if not isinstance(bounds, yaml.SequenceNode) or len(bounds.value) != 2:
            raise reader.fail(bounds, "digits", "expected [min, max]: how many digits a value has")
        low = reader.integer(bounds.value[0], "digits[0]", 1, 64)
        high = reader.integer(bounds.value[1], "digits[1]", low, 64)
        kw["digits"] = (low, high)
        if "run_contains" in f:
            kw["run_contains"] = reader.string(f["run_contains"], "run_contains")
    elif "digits" in f or "run_contains" in f:
        key = "digits" if "digits" in f else "run_contains"
        raise reader.fail(f[key], key, "only allowed with anchor: digits")
    if "validator" in f:
        kw["validator"] = reader.named(f["validator"], "validator", VALIDATORS, "validator")
    if "filters" in f:
        kw["filters"] = tuple(
            reader.named(node, f"filters[{i}]", VALIDATORS, "filter")
            for i, (_, node) in enumerate(reader.strings(f["filters"], "filters"))
        )
    for key in ("keywords", "column_keywords", "negative_keywords"):
        if key in f:
            kw[key] = tuple(v.lower() for v, _ in reader.strings(f[key], key))
    if anchor == "keyword" and not kw.get("keywords"):
        raise reader.fail(f.get("keywords", root), "keywords", "anchor: keyword needs keywords")
    if "window" in f:
        kw["window"] = reader.integer(f["window"], "window", 1, 5000)
    if "negative_window" in f:
        kw["negative_window"] = reader.integer(f["negative_window"], "negative_window", 1, 5000)
    if "exclude" in f:
        kw["exclude"] = frozenset(v for v, _ in reader.strings(f["exclude"], "exclude"))
    if "exclude_action" in f:
        kw["exclude_action"] = reader.choice(f["exclude_action"], "exclude_action", EXCLUDE_ACTIONS)
    if "confidence" in f:
        steps = reader.mapping(f["confidence"], "confidence", _CONFIDENCE_KEYS)
        for key, attr in (
            ("valid", "raise_valid"),
            ("context", "raise_context"),
            ("negative", "lower_negative"),
        ):
            if key in steps:
                kw[attr] = reader.integer(steps[key], f"confidence.{key}", 0, 2)
    if "mask" in f:
        kw["mask"] = reader.named(f["mask"], "mask", MASKS, "mask")
    if "normalise" in f:
        kw["normalise"] = reader.named(f["normalise"], "normalise", NORMALISERS, "normaliser")
    if "regulations" in f:
        regs = []
        for i, (value, node) in enumerate(reader.strings(f["regulations"], "regulations")):
            regs.append(reader.choice(node, f"regulations[{i}]", REGULATIONS))
            del value
        kw["regulations"] = tuple(regs)
    else:
        kw["regulations"] = ()
    return Definition(
        id=did,
        description=reader.string(f["description"], "description"),
        category=reader.choice(f["category"], "category", CATEGORIES),
        anchor=anchor,
        source=file,
        **kw,
    )


def load_folders(
    folders: Sequence[Path], aggregates: Mapping[str, Callable[[Mapping[str, Any]], str | None]]
) -> list[Definition]:
    """Every `*.yaml` definition in the folders, in order. A later folder's file with the id
    of an earlier one replaces it (users override a built-in by shipping the same id)."""
    by_id: dict[str, Definition] = {}
    for folder in folders:
        if not folder.is_dir():
            raise DefinitionError(str(folder), None, None, "detector folder does not exist")
        for path in sorted(folder.glob("*.yaml")):
            definition = load_definition(path, aggregates)
            by_id[definition.id] = definition
    return list(by_id.values())
