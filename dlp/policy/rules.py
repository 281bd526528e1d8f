"""One policy file (a pack) -> validated rules.

A pack is a YAML mapping with `rules:` and optional pack-wide defaults and allowlists
(`regulations`, `allow_hashes`, `allow_senders`, `allow_recipients`, `deadlines`).
Every problem is recorded with file, line and field; a pack with problems yields no
rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlp.model import Action
from dlp.policy.conditions import Condition
from dlp.policy.grammar import parse_condition
from dlp.policy.parse import Place, Problems
from dlp.policy.source import LineMap

__all__ = ["MODES", "SEVERITIES", "Pack", "Rule", "parse_pack"]

MODES = ("enforce", "monitor")
SEVERITIES = ("low", "medium", "high", "critical")
ACTIONS = ("block", "quarantine", "alert", "allow")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_REPLY_TEXT = re.compile(r"^[\x20-\x7e]{1,400}$")
_REGULATION = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_PACK_KEYS = (
    "name",
    "description",
    "enabled",
    "regulations",
    "deadlines",
    "allow_hashes",
    "allow_senders",
    "allow_recipients",
    "rules",
)
_RULE_KEYS = (
    "id",
    "description",
    "enabled",
    "mode",
    "severity",
    "regulations",
    "when",
    "unless",
    "action",
    "message",
    "notify",
    "allow_hashes",
    "allow_senders",
    "allow_recipients",
)


@dataclass(frozen=True)
class Rule:
    """A validated rule: when `when` holds and `unless` does not, propose `action`."""

    id: str
    description: str
    action: Action
    when: Condition
    unless: Condition | None = None
    enabled: bool = True
    mode: str = "enforce"
    severity: str = "medium"
    regulations: tuple[str, ...] = ()
    message: str | None = None
    notify: tuple[str, ...] = ()
    allow_hashes: frozenset[str] = frozenset()
    allow_senders: tuple[str, ...] = ()
    allow_recipients: tuple[str, ...] = ()
    source: str = ""
    line: int = 0

    @property
    def severity_rank(self) -> int:
        """Position of the severity in low < medium < high < critical."""
        return SEVERITIES.index(self.severity)

    def to_dict(self) -> dict[str, Any]:
        """What `GET /v1/policies` shows of the rule."""
        return {
            "id": self.id,
            "description": self.description,
            "action": self.action.label,
            "mode": self.mode,
            "severity": self.severity,
            "regulations": list(self.regulations),
            "enabled": self.enabled,
            "source": self.source,
        }


@dataclass(frozen=True)
class Pack:
    """The rules of one file and the notification clocks it sets."""

    path: Path
    name: str
    rules: tuple[Rule, ...]
    deadlines: dict[str, int]


def parse_pack(path: Path, document: Any, problems: Problems) -> Pack | None:
    """Validate one file's document; record problems; None if there were any."""
    before = len(problems.errors)
    place = Place(str(path), int(getattr(document, "line", 1)) or 1, "", problems)
    if document is None:
        place.error("the file is empty; expected a mapping with 'rules'")
        return None
    top = place.mapping(document, _PACK_KEYS, required=("rules",))
    if top is None:
        return None
    name = path.stem
    if "name" in top:
        name = place.key(top, "name").text(top["name"]) or name
    if "description" in top:
        place.key(top, "description").text(top["description"])
    enabled = True
    if "enabled" in top:
        enabled = place.key(top, "enabled").boolean(top["enabled"]) is not False
    regulations = _regulations(top, place)
    deadlines = _deadlines(top, place)
    hashes = _texts(top, "allow_hashes", place)
    senders = _addresses(top, "allow_senders", place)
    recipients = _addresses(top, "allow_recipients", place)
    rules: list[Rule] = []
    raw_rules = top["rules"]
    rules_place = place.key(top, "rules")
    if not isinstance(raw_rules, list):
        rules_place.error("expected a list of rules")
    else:
        for index, raw in enumerate(raw_rules):
            rule_place = rules_place.child(f"[{index}]", int(getattr(raw, "line", rules_place.line)))
            rule = _parse_rule(raw, rule_place, regulations, enabled)
            if rule is not None:
                rules.append(_with_pack_allowlists(rule, frozenset(hashes), senders, recipients, str(path)))
    if len(problems.errors) > before:
        return None
    return Pack(path=path, name=name, rules=tuple(rules), deadlines=deadlines)


def _parse_rule(raw: Any, place: Place, pack_regulations: tuple[str, ...], pack_enabled: bool) -> Rule | None:
    mapping = place.mapping(raw, _RULE_KEYS, required=("id", "when", "action"))
    if mapping is None:
        return None
    before = len(place.problems.errors)
    rule_id = place.key(mapping, "id").text(mapping["id"]) or ""
    if rule_id and not _RULE_ID.match(rule_id):
        place.key(mapping, "id").error(f"{rule_id!r} is not a rule id (kebab-case, up to 64 characters)")
    description = ""
    if "description" in mapping:
        description = place.key(mapping, "description").text(mapping["description"]) or ""
    enabled = pack_enabled
    if "enabled" in mapping:
        enabled = pack_enabled and place.key(mapping, "enabled").boolean(mapping["enabled"]) is not False
    mode = place.key(mapping, "mode").choice(mapping["mode"], MODES) if "mode" in mapping else "enforce"
    severity = "medium"
    if "severity" in mapping:
        severity = place.key(mapping, "severity").choice(mapping["severity"], SEVERITIES) or severity
    action_label = place.key(mapping, "action").choice(mapping["action"], ACTIONS)
    regulations = _regulations(mapping, place) if "regulations" in mapping else pack_regulations
    when = parse_condition(mapping["when"], place.key(mapping, "when"))
    unless = parse_condition(mapping["unless"], place.key(mapping, "unless")) if "unless" in mapping else None
    message = place.key(mapping, "message").text(mapping["message"]) if "message" in mapping else None
    if message is not None and not _REPLY_TEXT.match(message):
        place.key(mapping, "message").error("the sender message must be one line of printable ASCII")
    notify = _texts(mapping, "notify", place)
    hashes = _texts(mapping, "allow_hashes", place)
    senders = _addresses(mapping, "allow_senders", place)
    recipients = _addresses(mapping, "allow_recipients", place)
    if len(place.problems.errors) > before or when is None or action_label is None or mode is None:
        return None
    return Rule(
        id=rule_id,
        description=description or rule_id,
        action=Action.parse(action_label),
        when=when,
        unless=unless,
        enabled=enabled,
        mode=mode,
        severity=severity,
        regulations=regulations,
        message=message,
        notify=notify,
        allow_hashes=frozenset(hashes),
        allow_senders=senders,
        allow_recipients=recipients,
        line=place.line,
    )


def _with_pack_allowlists(
    rule: Rule, hashes: frozenset[str], senders: tuple[str, ...], recipients: tuple[str, ...], source: str
) -> Rule:
    return Rule(
        **{
            **rule.__dict__,
            "allow_hashes": rule.allow_hashes | hashes,
            "allow_senders": rule.allow_senders + senders,
            "allow_recipients": rule.allow_recipients + recipients,
            "source": source,
        }
    )


def _texts(mapping: LineMap, key: str, place: Place) -> tuple[str, ...]:
    if key not in mapping:
        return ()
    return place.key(mapping, key).texts(mapping[key], allow_empty=True) or ()


def _addresses(mapping: LineMap, key: str, place: Place) -> tuple[str, ...]:
    """Addresses (`a@b.org`) or domains (`b.org`, `@b.org`), lower case."""
    return tuple(t.lower().strip("<>").removeprefix("@") for t in _texts(mapping, key, place))


def _regulations(mapping: LineMap, place: Place) -> tuple[str, ...]:
    out = []
    for regulation in _texts(mapping, "regulations", place):
        name = regulation.lower()
        if not _REGULATION.match(name):
            place.key(mapping, "regulations").error(
                f"{regulation!r} is not a regulation name (e.g. gdpr, pci-dss)"
            )
        out.append(name)
    return tuple(out)


def _deadlines(mapping: LineMap, place: Place) -> dict[str, int]:
    if "deadlines" not in mapping:
        return {}
    sub = place.key(mapping, "deadlines")
    value = mapping["deadlines"]
    if not isinstance(value, LineMap) or not value:
        sub.error("expected a mapping of regulation name to hours")
        return {}
    out = {}
    for name in value:
        hours = sub.key(value, name).count(value[name], 1)
        if hours is not None:
            out[name.lower()] = hours
    return out
