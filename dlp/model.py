"""The words every module shares: items, parts, findings, verdicts and scan results.

Everything here is a frozen dataclass or an enum so that stages can hand values to
each other (and to worker processes) without anyone mutating what another stage saw.
Nothing in this module holds a raw matched value: findings carry a masked preview and
a keyed hash only.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "Action",
    "Confidence",
    "Evidence",
    "Finding",
    "Item",
    "Limits",
    "Part",
    "PartInfo",
    "RuleMatch",
    "ScanContext",
    "ScanResult",
    "Table",
    "Verdict",
    "iter_flags",
    "new_id",
]


class Confidence(enum.IntEnum):
    """How sure a detector is; ordered so that `>=` compares strength."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        """The lower-case name used in files, JSON and metrics."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Confidence:
        """Read `low`, `medium` or `high` (any case)."""
        return cls[text.strip().upper()]


class Action(enum.IntEnum):
    """What happens to an item; ordered by severity (block is the most severe)."""

    ALLOW = 0
    ALERT = 1
    QUARANTINE = 2
    BLOCK = 3

    @property
    def label(self) -> str:
        """The lower-case name used in files, JSON and metrics."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Action:
        """Read `allow`, `alert`, `quarantine` or `block` (any case)."""
        return cls[text.strip().upper()]

    @property
    def exit_code(self) -> int:
        """Exit status of `dlp scan` for this action (0 allow ... 3 block)."""
        return int(self)


@dataclass(frozen=True)
class Limits:
    """Hard bounds on extraction, modelled on ClamAV and amavisd-new."""

    max_depth: int = 16
    max_files: int = 10_000
    max_total_bytes: int = 500 * 1024 * 1024
    max_member_bytes: int = 100 * 1024 * 1024
    max_ratio: int = 1000
    max_seconds: float = 60.0


@dataclass(frozen=True)
class Item:
    """Something to scan: bytes in memory or a spooled file, with an optional name.

    The declared type is kept for explanations only; extraction sniffs the real type.
    """

    data: bytes | None = None
    path: Path | None = None
    name: str | None = None
    declared_type: str | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.path is None):
            raise ValueError("an Item holds exactly one of data or path")

    @property
    def size(self) -> int:
        """Size in bytes of the item as received."""
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def open(self) -> IO[bytes]:
        """A binary stream over the item's bytes."""
        if self.data is not None:
            import io

            return io.BytesIO(self.data)
        assert self.path is not None
        return self.path.open("rb")

    @classmethod
    def from_text(cls, text: str, name: str | None = None) -> Item:
        """An item made of UTF-8 text (the JSON text endpoint, tests)."""
        return cls(data=text.encode("utf-8", "surrogatepass"), name=name, declared_type="text/plain")


@dataclass(frozen=True)
class Table:
    """Marks a part as tabular: its delimiter and header row (column names).

    A column header is context for every value in its column, however far below it is.
    Every chunk of a large table carries the same header.
    """

    delimiter: str
    header: tuple[str, ...]


@dataclass(frozen=True)
class Part:
    """One piece of extracted text with where it came from and what could not be read.

    A large part may arrive as several chunks with the same location; `offset` is the
    character offset of this chunk's text within the whole part, so finding offsets stay
    relative to the part as a whole.
    """

    location: str
    type: str
    size: int
    text: str
    flags: tuple[str, ...] = ()
    name: str | None = None
    table: Table | None = None
    offset: int = 0

    def info(self) -> PartInfo:
        """The part without its text: what results and policies may keep."""
        return PartInfo(self.location, self.type, self.size, self.flags, self.name)


@dataclass(frozen=True)
class PartInfo:
    """A part's description in a result: location, sniffed type, size, flags, name."""

    location: str
    type: str
    size: int
    flags: tuple[str, ...] = ()
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of INTERFACE.md."""
        return {"location": self.location, "type": self.type, "size": self.size, "flags": list(self.flags)}


@dataclass(frozen=True)
class Finding:
    """One detection: never the raw value, only its masked preview and keyed hash.

    `count` is 1 for a single value; aggregate detectors (customer lists, exact data
    match) report how many rows or records they saw. `attributes` holds small named
    facts for policies (e.g. `rows`, `records`, `columns`).
    """

    detector: str
    category: str
    location: str
    start: int
    end: int
    confidence: Confidence
    preview: str
    hash: str
    explanation: str = ""
    regulations: tuple[str, ...] = ()
    count: int = 1
    attributes: Mapping[str, int | str] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def of(
        cls,
        detector: str,
        category: str,
        location: str,
        start: int,
        end: int,
        confidence: Confidence,
        preview: str,
        hash: str,
        explanation: str,
        regulations: tuple[str, ...],
    ) -> Finding:
        """The finding the constructor makes with these fields, count 1 and no attributes, at
        a third of its cost: the engine makes one per match, and a frozen dataclass's
        `__init__` sets each field through `object.__setattr__`. The instance is as frozen."""
        finding = object.__new__(cls)
        finding.__dict__.update(
            detector=detector,
            category=category,
            location=location,
            start=start,
            end=end,
            confidence=confidence,
            preview=preview,
            hash=hash,
            explanation=explanation,
            regulations=regulations,
            count=1,
            attributes={},
        )
        return finding

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of INTERFACE.md."""
        out: dict[str, Any] = {
            "detector": self.detector,
            "category": self.category,
            "location": self.location,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence.label,
            "preview": self.preview,
            "hash": self.hash,
            "explanation": self.explanation,
        }
        if self.count != 1:
            out["count"] = self.count
        if self.attributes:
            out["attributes"] = dict(self.attributes)
        return out


@dataclass(frozen=True)
class ScanContext:
    """Who sends what to whom, through which channel: what policies may condition on."""

    channel: str = "cli"
    sender: str | None = None
    recipients: tuple[str, ...] = ()
    client: str | None = None
    internal_domains: tuple[str, ...] = ()

    def external_recipients(self) -> tuple[str, ...]:
        """Recipients whose domain is not one of `internal_domains` (or a subdomain)."""
        internal = tuple(d.lower().lstrip(".") for d in self.internal_domains)
        out = []
        for rcpt in self.recipients:
            domain = rcpt.rpartition("@")[2].lower().rstrip(">")
            if not any(domain == d or domain.endswith("." + d) for d in internal):
                out.append(rcpt)
        return tuple(out)


@dataclass(frozen=True)
class Evidence:
    """What the decide stage sees: the item's parts, findings and flags, no text."""

    item_name: str | None
    item_size: int
    parts: tuple[PartInfo, ...]
    findings: tuple[Finding, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched, with its one-line explanation."""

    rule_id: str
    action: Action
    explanation: str
    mode: str = "enforce"
    severity: str = "medium"
    regulations: tuple[str, ...] = ()
    message: str | None = None
    notify: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of INTERFACE.md (plus mode and severity)."""
        out: dict[str, Any] = {
            "id": self.rule_id,
            "action": self.action.label,
            "explanation": self.explanation,
            "mode": self.mode,
            "severity": self.severity,
        }
        if self.regulations:
            out["regulations"] = list(self.regulations)
        return out


@dataclass(frozen=True)
class Verdict:
    """The decision for one item: one action and the rules that led to it.

    `deadlines` maps each implicated regulation to its notification clock in hours
    (GDPR: 72), so responders see the deadline.
    """

    action: Action
    rules: tuple[RuleMatch, ...] = ()
    regulations: tuple[str, ...] = ()
    message: str | None = None
    deadlines: Mapping[str, int] = field(default_factory=dict, hash=False, compare=False)
    policy_version: str = ""


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan produced; `to_dict` is the public JSON shape."""

    id: str
    verdict: Verdict
    parts: tuple[PartInfo, ...]
    findings: tuple[Finding, ...]
    flags: tuple[str, ...]
    item_size: int = 0
    item_name: str | None = None
    duration_seconds: float = 0.0

    @property
    def action(self) -> Action:
        """The verdict's action."""
        return self.verdict.action

    def to_dict(self) -> dict[str, Any]:
        """The scan result JSON of INTERFACE.md, the same for CLI and API."""
        out: dict[str, Any] = {
            "id": self.id,
            "action": self.verdict.action.label,
            "rules": [r.to_dict() for r in self.verdict.rules],
            "parts": [p.to_dict() for p in self.parts],
            "findings": [f.to_dict() for f in self.findings],
            "flags": list(self.flags),
            "regulations": list(self.verdict.regulations),
        }
        if self.verdict.message:
            out["message"] = self.verdict.message
        if self.verdict.deadlines:
            out["deadlines_hours"] = dict(self.verdict.deadlines)
        return out


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class _MonotonicClock:
    """The last id this process made, so that ids made within one millisecond (or
    after the wall clock stepped back) still sort in the order they were made: lists
    that page by id DESC show the newest first."""

    def __init__(self) -> None:
        self.last = 0
        self.lock = threading.Lock()

    def reset(self) -> None:
        """Forget the parent's last id in a forked child, so that two children never
        both take the parent's last id plus one."""
        self.last = 0
        self.lock = threading.Lock()


_CLOCK = _MonotonicClock()
os.register_at_fork(after_in_child=_CLOCK.reset)


def new_id(now: float | None = None) -> str:
    """A ULID: 26 characters, sortable by creation time, 80 random bits. Ids made on
    the wall clock (no `now`) are strictly increasing within a process, as the ULID
    spec's monotonic mode has it."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    if now is None:
        with _CLOCK.lock:
            value = max(value, _CLOCK.last + 1)
            _CLOCK.last = value
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def iter_flags(parts: Iterator[PartInfo] | tuple[PartInfo, ...]) -> tuple[str, ...]:
    """The union of the parts' flags, sorted: the item's overall flags."""
    return tuple(sorted({flag for part in parts for flag in part.flags}))
