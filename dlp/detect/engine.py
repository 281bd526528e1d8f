"""The compiled detection engine: definitions in, findings (never raw values) out.

`Engine.from_folders` loads and compiles every definition once. `Engine.detect(part)`
scans a part's text in a few cheap passes and only then runs regexes, in small regions:

1. candidate anchors (`dlp.detect.anchors`): one vectorised scan for digit runs, one for
   IBAN-like letter-digit starts, `str.find` for '@' and literal key prefixes, and, for
   detectors that need context to fire at all, for their trigger keywords;
2. each anchored detector's patterns run in a region around each candidate (a few
   dozen characters), then its validator and filters (Presidio semantics: True raises,
   False drops, None keeps the pattern's score);
3. context keywords are looked up only in the window around a surviving match (or in
   the column header of tabular text); negative keywords and excluded values lower or
   drop it;
4. overlapping weaker matches of other detectors are dropped, aggregates (customer
   lists, CRM export headers) judge the table as a whole, and each result becomes a
   `Finding` with a masked preview and a keyed hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlp.detect.anchors import code_points, digit_runs, find_all, letters_digits
from dlp.detect.definition import REGEX_TIMEOUT_SECONDS, Definition, PatternDef, load_folders
from dlp.detect.masking import MASKS, NORMALISERS, keyed_hash
from dlp.detect.tabular import AGGREGATES, column_of, normalise_header
from dlp.detect.validators import VALIDATORS
from dlp.model import Confidence, Finding, Part

__all__ = ["DetectorInfo", "Engine"]

_DIGIT_BEFORE = 4
_DIGIT_AFTER = 3
_EMAIL_BEFORE = 64
_EMAIL_AFTER = 256
_LITERAL_SPAN = 8192
_IBAN_SPAN = 48


@dataclass(frozen=True)
class DetectorInfo:
    """What `dlp detectors` and `GET /v1/detectors` show about one loaded detector."""

    id: str
    description: str
    category: str
    regulations: tuple[str, ...]
    confidence_rules: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape: every field, regulations as a list."""
        return {
            "id": self.id,
            "description": self.description,
            "category": self.category,
            "regulations": list(self.regulations),
            "confidence_rules": self.confidence_rules,
            "source": self.source,
        }


class _Detector:
    """A definition with its named functions resolved, ready for the hot path."""

    __slots__ = (
        "d",
        "exclude",
        "filters",
        "hash_norm",
        "mask",
        "min_digits",
        "negative",
        "patterns",
        "timeout",
        "validator",
        "validator_name",
    )

    def __init__(self, d: Definition, timeout: float | None) -> None:
        self.d = d
        self.patterns: tuple[PatternDef, ...] = d.patterns
        self.validator_name = d.validator
        self.validator: Callable[[str], bool | None] | None = VALIDATORS[d.validator] if d.validator else None
        self.filters = tuple(VALIDATORS[name] for name in d.filters)
        self.mask = MASKS[d.mask]
        self.hash_norm = NORMALISERS[d.normalise]
        self.exclude = frozenset(self.hash_norm(value) for value in d.exclude)
        self.negative = d.negative_keywords
        self.timeout = timeout
        self.min_digits = d.min_digits


@dataclass(slots=True)
class _Hit:
    det: _Detector
    pattern: PatternDef
    start: int
    end: int
    value: str


class _Text:
    """One part's text with lazily built views (lower case, code points) and its table."""

    __slots__ = ("_low", "header_ctx", "part", "text")

    def __init__(self, part: Part) -> None:
        self.part = part
        self.text = part.text
        self._low: str | None = None
        self.header_ctx: dict[str, dict[int, str]] | None = None

    def lowered(self) -> str:
        if self._low is None:
            low = self.text.lower()
            self._low = low if len(low) == len(self.text) else self.text
        return self._low

    def window(self, start: int, end: int) -> str:
        low = self.lowered()
        if low is self.text and not self.text.islower():
            return self.text[start:end].lower()
        return low[start:end]


def _keyword_in(window: str, keywords: Iterable[str]) -> str | None:
    """The first keyword occurring in `window` as a whole word (a plural 's' allowed)."""
    for keyword in keywords:
        pos = window.find(keyword)
        while pos >= 0:
            end = pos + len(keyword)
            before_ok = pos == 0 or not window[pos - 1].isalnum()
            after = window[end : end + 1]
            after_ok = (
                not after or not after.isalnum() or (after == "s" and not window[end + 1 : end + 2].isalnum())
            )
            if before_ok and after_ok:
                return keyword
            pos = window.find(keyword, pos + 1)
    return None


def _word_at(text: str, pos: int, length: int) -> bool:
    end = pos + length
    return (pos == 0 or not text[pos - 1].isalnum()) and (end >= len(text) or not text[end].isalnum())


class Engine:
    """Every loaded detector, compiled once; `detect(part)` is safe to call from many threads."""

    def __init__(
        self, definitions: Sequence[Definition], hash_key: bytes, trusted: Iterable[str] = ()
    ) -> None:
        self._key = hash_key
        trusted_ids = set(trusted)
        self._all = [
            _Detector(d, None if d.id in trusted_ids else REGEX_TIMEOUT_SECONDS)
            for d in definitions
            if d.anchor != "table"
        ]
        self._aggregates = [d for d in definitions if d.anchor == "table"]
        self._by_anchor: dict[str, list[_Detector]] = {}
        for det in self._all:
            self._by_anchor.setdefault(det.d.anchor, []).append(det)
        self._digits = sorted(self._by_anchor.get("digits", []), key=lambda det: det.min_digits)
        self._literals: list[tuple[str, _Detector]] = [
            (lit, det) for det in self._by_anchor.get("literal", []) for lit in det.d.literals
        ]
        self._definitions = tuple(definitions)
        self._infos = tuple(
            DetectorInfo(d.id, d.description, d.category, d.regulations, d.rules_summary(), d.source)
            for d in sorted(definitions, key=lambda d: d.id)
        )

    @classmethod
    def from_folders(cls, folders: Sequence[Path], hash_key: bytes) -> Engine:
        """Load every `*.yaml` definition in the folders; the first is the built-in folder.

        A later folder's definition with the same id replaces the earlier one. Regexes from
        the built-in folder run without a timeout; any other definition's regexes run with
        one, so a user-supplied pattern cannot stall a scan.
        """
        aggregates = {name: agg.check for name, agg in AGGREGATES.items()}
        definitions = load_folders(folders, aggregates)
        builtin = {p.stem for p in folders[0].glob("*.yaml")} if folders else set()
        trusted = [d.id for d in definitions if d.id in builtin and Path(d.source).parent == folders[0]]
        return cls(definitions, hash_key, trusted)

    @property
    def detectors(self) -> tuple[DetectorInfo, ...]:
        """What is loaded, sorted by id."""
        return self._infos

    # ------------------------------------------------------------------ scanning

    def detect(self, part: Part) -> list[Finding]:
        """Every finding in the part, offsets relative to the whole part (chunk offset added)."""
        text = part.text
        view = _Text(part)
        hits: list[_Hit] = []
        if text:
            self._anchored(view, hits)
            self._triggered(view, hits)
        scored = self._score(view, hits)
        findings = self._resolve(part, scored)
        if self._aggregates:
            findings.extend(self._aggregate(part, findings))
        return findings

    def _search(self, det: _Detector, pattern: PatternDef, text: str, lo: int, hi: int) -> list[Any]:
        try:
            if det.timeout is None:
                return list(pattern.regex.finditer(text, lo, hi))
            return list(pattern.regex.finditer(text, lo, hi, timeout=det.timeout))
        except TimeoutError:
            return []

    def _collect(
        self, det: _Detector, text: str, lo: int, hi: int, hits: list[_Hit], anchor: int = -1
    ) -> None:
        for pattern in det.patterns:
            for match in self._search(det, pattern, text, lo, hi):
                start, end = match.span("value")
                if start < 0 or (anchor >= 0 and not start <= anchor < end):
                    continue
                hits.append(_Hit(det, pattern, start, end, match.group("value")))

    def _anchored(self, view: _Text, hits: list[_Hit]) -> None:
        text = view.text
        n = len(text)
        points = None
        if self._digits or "letters-digits" in self._by_anchor:
            points = code_points(text)
        if self._digits and points is not None:
            digits = self._digits
            for start, end in digit_runs(points):
                run_digits = end - start
                if run_digits >= digits[0].min_digits:
                    seg = text[start:end]
                    run_digits = sum(map(seg.count, "0123456789"))
                lo = max(0, start - _DIGIT_BEFORE)
                hi = min(n, end + _DIGIT_AFTER)
                for det in digits:
                    if det.min_digits > run_digits:
                        break
                    self._collect(det, text, lo, hi, hits)
        if "letters-digits" in self._by_anchor and points is not None:
            for pos in letters_digits(points):
                for det in self._by_anchor["letters-digits"]:
                    self._collect(det, text, pos, min(n, pos + _IBAN_SPAN), hits)
        if "email" in self._by_anchor:
            for pos in find_all(text, "@"):
                lo = max(0, pos - _EMAIL_BEFORE)
                hi = min(n, pos + _EMAIL_AFTER)
                for det in self._by_anchor["email"]:
                    self._collect(det, text, lo, hi, hits, anchor=pos)
        for literal, det in self._literals:
            for pos in find_all(text, literal):
                self._collect(det, text, pos, min(n, pos + _LITERAL_SPAN), hits, anchor=pos)

    def _triggered(self, view: _Text, hits: list[_Hit]) -> None:
        """Detectors anchored on keywords: patterns run only in windows around a keyword,
        and over the cells of a table column whose header names them."""
        dets = self._by_anchor.get("keyword")
        if not dets:
            return
        text = view.text
        n = len(text)
        low = view.lowered()
        for det in dets:
            windows: list[tuple[int, int]] = []
            for keyword in det.d.keywords:
                for pos in find_all(low, keyword):
                    if (
                        _word_at(low, pos, len(keyword))
                        or low[pos + len(keyword) : pos + len(keyword) + 1] == "s"
                    ):
                        windows.append(
                            (max(0, pos - det.d.window), min(n, pos + len(keyword) + det.d.window))
                        )
            if view.part.table is not None and det.d.id in self._header_context(view):
                windows = [(0, n)]
            for lo, hi in _merge(windows):
                self._collect(det, text, lo, hi, hits)

    def _header_context(self, view: _Text) -> dict[str, dict[int, str]]:
        """For each detector: the columns whose header cell carries one of its keywords."""
        if view.header_ctx is None:
            table = view.part.table
            out: dict[str, dict[int, str]] = {}
            if table is not None:
                cells = [normalise_header(c) for c in table.header]
                for det in self._all:
                    for index, cell in enumerate(cells):
                        if _keyword_in(cell, det.d.keywords):
                            out.setdefault(det.d.id, {})[index] = table.header[index].strip()
            view.header_ctx = out
        return view.header_ctx

    def _column_context(self, view: _Text, det: _Detector, start: int) -> str | None:
        columns = self._header_context(view).get(det.d.id)
        if not columns:
            return None
        table = view.part.table
        assert table is not None
        return columns.get(column_of(view.text, start, table))

    def _score(self, view: _Text, hits: list[_Hit]) -> list[tuple[_Hit, Confidence, str]]:
        out: list[tuple[_Hit, Confidence, str]] = []
        seen: set[tuple[str, int, int]] = set()
        text = view.text
        n = len(text)
        for hit in hits:
            det = hit.det
            key = (det.d.id, hit.start, hit.end)
            if key in seen:
                continue
            seen.add(key)
            value = hit.value
            level = int(hit.pattern.confidence)
            notes = [f"pattern {hit.pattern.id}"]
            if det.validator is not None:
                verdict = det.validator(value)
                if verdict is False:
                    continue
                if verdict:
                    level += det.d.raise_valid
                notes.append(f"validator {det.validator_name}: {'pass' if verdict else 'undecided'}")
            if any(check(value) is False for check in det.filters):
                continue
            context = None
            if det.d.keywords:
                w = det.d.window
                context = _keyword_in(view.window(max(0, hit.start - w), min(n, hit.end + w)), det.d.keywords)
                if context is None and view.part.table is not None:
                    column = self._column_context(view, det, hit.start)
                    if column is not None:
                        context = f"column '{column}'"
            if context is not None:
                level += det.d.raise_context
                notes.append(f"context {context}")
            elif hit.pattern.requires_context:
                continue
            if det.negative:
                w = det.d.negative_window
                negative = _keyword_in(view.window(max(0, hit.start - w), min(n, hit.end + w)), det.negative)
                if negative is not None:
                    level -= det.d.lower_negative
                    notes.append(f"negative {negative}")
            if det.exclude and det.hash_norm(value) in det.exclude:
                if det.d.exclude_action == "drop":
                    continue
                level = int(Confidence.LOW)
                notes.append("excluded value")
            if level < int(Confidence.LOW):
                continue
            out.append((hit, Confidence(min(level, int(Confidence.HIGH))), "; ".join(notes)))
        return out

    def _resolve(self, part: Part, scored: list[tuple[_Hit, Confidence, str]]) -> list[Finding]:
        """Drop a match that overlaps a stronger match of another detector; build findings."""
        scored.sort(key=lambda item: (-item[1], item[0].start))
        kept: list[tuple[_Hit, Confidence, str]] = []
        taken: list[tuple[int, int, int]] = []
        for hit, level, note in scored:
            if any(s < hit.end and hit.start < e and level < lvl for s, e, lvl in taken):
                continue
            taken.append((hit.start, hit.end, int(level)))
            kept.append((hit, level, note))
        kept.sort(key=lambda item: (item[0].start, item[0].det.d.id))
        out = []
        offset = part.offset
        for hit, level, note in kept:
            d = hit.det.d
            out.append(
                Finding(
                    detector=d.id,
                    category=d.category,
                    location=part.location,
                    start=offset + hit.start,
                    end=offset + hit.end,
                    confidence=level,
                    preview=hit.det.mask(hit.value),
                    hash=keyed_hash(self._key, hit.det.hash_norm(hit.value)),
                    explanation=note,
                    regulations=d.regulations,
                )
            )
        return out

    def _aggregate(self, part: Part, findings: Sequence[Finding]) -> list[Finding]:
        located = [(f.detector, f.start - part.offset) for f in findings]
        out = []
        for d in self._aggregates:
            assert d.aggregate is not None
            result = AGGREGATES[d.aggregate].run(part.text, part.table, located, d.params, part.offset)
            if result is None:
                continue
            out.append(
                Finding(
                    detector=d.id,
                    category=d.category,
                    location=part.location,
                    start=part.offset + result.start,
                    end=part.offset + result.end,
                    confidence=result.confidence,
                    preview=f"{result.count} rows"
                    if "rows" in result.attributes
                    else str(result.attributes.get("system", "")),
                    hash=keyed_hash(self._key, result.fingerprint),
                    explanation=result.explanation,
                    regulations=d.regulations,
                    count=result.count,
                    attributes=dict(result.attributes),
                )
            )
        return out


def _merge(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping (start, end) windows merged into disjoint ones, in order."""
    if not windows:
        return []
    windows.sort()
    merged = [windows[0]]
    for lo, hi in windows[1:]:
        last_lo, last_hi = merged[-1]
        if lo <= last_hi:
            merged[-1] = (last_lo, max(last_hi, hi))
        else:
            merged.append((lo, hi))
    return merged
