"""The compiled detection engine: definitions in, findings (never raw values) out.

`Engine.from_folders` loads and compiles every definition once. `Engine.detect(part)`
scans a part's text in a few cheap passes and only then runs regexes, in small regions:

1. one Aho-Corasick pass (ahocorasick-rs, a DFA in Rust, several times faster than
   pyahocorasick and returning all matches in one call; run over UTF-8 bytes, which it
   scans twice as fast as a `str`) over the lower-cased text finds
   every keyword, negative keyword, literal key prefix and dictionary term of every
   detector at once; keyword matches are kept as they come, unsorted per detector;
2. cheap anchor scans (`dlp.detect.anchors`, over one byte of character class per
   character) find digit runs, IBAN-like letter-digit starts, '@' signs and IPv6-like
   colons; each digit run goes only to the detectors whose values have that many digits
   (digits of other scripts were first read as ASCII ones);
3. each anchored detector's patterns run in a region of a few dozen characters around
   its candidates (keyword-anchored detectors: in a window after their keyword), then
   its validator and filters (Presidio semantics: True raises, False drops, None keeps);
4. context is looked up, never scanned again: a keyword of the detector within its
   window (a binary search in the match ends of step 1, then a look at the few matches
   in range: a keyword far from every candidate costs nothing) or the column header of
   tabular text; negative keywords and excluded values lower or drop the match;
5. a match overlapping a stronger match of another detector is dropped, aggregates
   (customer lists, CRM export headers) judge the table as a whole, and each result
   becomes a `Finding` (`Finding.of`) with a masked preview and a keyed hash (HMAC
   states keyed once per engine).
"""

from __future__ import annotations

import bisect
import functools
import operator
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ahocorasick_rs
import numpy as np
import numpy.typing as npt
import regex

from dlp.detect.anchors import DIGIT, classes, digit_runs, find_all, hex_colons, letters_digits
from dlp.detect.definition import REGEX_TIMEOUT_SECONDS, Definition, DictionaryDef, PatternDef, load_folders
from dlp.detect.masking import MASKS, NORMALISERS, KeyedHasher
from dlp.detect.tabular import AGGREGATES, column_of, normalise_header, record_starts
from dlp.detect.validators import VALIDATORS
from dlp.model import Confidence, Finding, Part

__all__ = ["DIGIT_RUN", "Candidate", "DetectorInfo", "Engine", "RunCounts"]

# (detector id or DIGIT_RUN, raw value, start, end): what `Engine.detect` hands to exact
# data match. It holds raw values: it stays in the scanning process and is never stored.
Candidate = tuple[str, str, int, int]
DIGIT_RUN = "digit-run"
# Which digit runs exact data match wants: digit counts, and the longest count (a run with
# more digits and a space is wanted too: a group of its tokens may be a value).
RunCounts = tuple[frozenset[int], int]

_DIGIT_BEFORE = 4
_DIGIT_AFTER = 3
_EMAIL_BEFORE = 64
_EMAIL_AFTER = 256
_LITERAL_SPAN = 16384
_IBAN_SPAN = 48
# Around a hex-colon anchor: an IPv6 address is at most 39 characters (45 with a dotted tail).
_HEX_BEFORE = 40
_HEX_AFTER = 46
_MAX_DIGITS = 64
_HEADER_CACHE = 256
# A space-joined digit run longer than any single value is also split at its spaces:
# "Ref 12345 4111111111111111" holds a card number after a reference.
_SUBRUN_MIN_DIGITS = 7
# A trigger keyword is a label: its value follows it. Only a quarter of the window is searched
# before the keyword ("E11.9 (ICD-10)"), so a value belonging to the previous label is not taken.
_BACKWARD = 4
# Up to this many automaton keys the automaton is a DFA (fastest scan; its memory grows with
# the keys); a large dictionary gets the library's default, a compact NFA.
_DFA_KEYS = 20_000
_LEVELS = {int(level): level for level in Confidence}
# Scored matches in text order (start, then detector): attrgetter is a C call, a lambda is not.
_TEXT_ORDER = operator.attrgetter("hit.start", "hit.det.index")

# A sentence ends: a full stop, question or exclamation mark, white space, then a capital
# ("... on order. Card on file ..."; "Purchase order no. 4175004743" is not an end).
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+[A-Z]")

Search = Callable[[str, int, int], Any]


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


class _Pattern:
    """A pattern with its search and match functions bound (timeout included when untrusted)."""

    __slots__ = ("d", "match", "search", "stdlib")

    def __init__(self, d: PatternDef, trusted: bool) -> None:
        self.d = d
        self.search: Search
        self.match: Search
        fast = _stdlib(d.regex.pattern) if trusted else None
        self.stdlib = fast is not None
        if fast is not None:
            self.search, self.match = fast.search, fast.match
        elif trusted:
            self.search, self.match = d.regex.search, d.regex.match
        else:
            self.search = functools.partial(d.regex.search, timeout=REGEX_TIMEOUT_SECONDS)
            self.match = functools.partial(d.regex.match, timeout=REGEX_TIMEOUT_SECONDS)


def _stdlib(source: str) -> re.Pattern[str] | None:
    """The pattern compiled by the stdlib `re` when it accepts it: a built-in pattern runs
    thousands of times per text and `re` calls cost less than `regex` calls."""
    try:
        return re.compile(source)
    except re.error:
        return None


_GROUP = re.compile(r"\(\?P([<=])(\w+)")


def _combined(patterns: Sequence[PatternDef]) -> re.Pattern[str] | None:
    """All of a detector's patterns as one stdlib alternation (group names prefixed by the
    pattern's position), so a candidate costs one search per detector instead of one per
    pattern; None when a pattern is not stdlib syntax or carries global inline flags."""
    if len(patterns) < 2:
        return None
    return _alternation(patterns)


def _alternation(patterns: Sequence[PatternDef]) -> re.Pattern[str] | None:
    """The patterns as one stdlib alternation, group names prefixed by position (or None)."""
    branches = []
    for i, pattern in enumerate(patterns):
        source = pattern.regex.pattern
        if source.startswith("(?") and source[2:3].isalpha():
            return None
        prefixed = _GROUP.sub(lambda m: f"(?P{m.group(1)}p{i}_{m.group(2)}", source)  # noqa: B023
        branches.append(f"(?:{prefixed})")
    return _stdlib("|".join(branches))


class _Detector:
    """A definition with its named functions resolved, ready for the hot path."""

    __slots__ = (
        "combined",
        "d",
        "exclude",
        "filters",
        "hash_norm",
        "index",
        "mask",
        "patterns",
        "validator",
    )

    def __init__(self, d: Definition, index: int, trusted: bool, anchor: str | None = None) -> None:
        self.d = d
        self.index = index
        own = anchor or d.anchor
        patterns = [p for p in d.patterns if (p.anchor or d.anchor) == own]
        self.patterns = tuple(_Pattern(p, trusted) for p in patterns)
        self.combined = _combined(patterns) if trusted else None
        self.validator: Callable[[str], bool | None] | None = VALIDATORS[d.validator] if d.validator else None
        self.filters = tuple(VALIDATORS[name] for name in d.filters)
        self.mask = MASKS[d.mask]
        self.hash_norm = NORMALISERS[d.normalise]
        self.exclude = frozenset(self.hash_norm(value) for value in d.exclude)


class _DigitPlan:
    """What one digit count needs, resolved once: the prefilter's search, the strings one of
    which a run must contain (None: any run), and per detector its run filter, its combined
    search with each pattern's value group, and its patterns."""

    __slots__ = ("needs", "prefilter", "steps")

    def __init__(self, dets: Sequence[_Detector]) -> None:
        prefilter = _prefilter(dets)
        self.prefilter: Search | None = prefilter.search if prefilter is not None else None
        self.needs = (
            tuple({det.d.run_contains for det in dets}) if all(det.d.run_contains for det in dets) else None
        )
        self.steps = tuple(
            (
                det,
                det.d.run_contains,
                det.combined.search if det.combined is not None else None,
                tuple(
                    (det.combined.groupindex[f"p{i}_value"], pattern.d)
                    for i, pattern in enumerate(det.patterns)
                )
                if det.combined is not None
                else (),
                det.patterns,
            )
            for det in dets
        )


@dataclass(slots=True)
class _Hit:
    det: _Detector
    pattern: PatternDef | DictionaryDef
    start: int
    end: int
    value: str


@dataclass(slots=True)
class _Scored:
    hit: _Hit
    level: int
    context: bool
    note: str


class _Words:
    """Positions of one keyword-anchored detector's keywords, sorted, with the keyword at each."""

    __slots__ = ("keywords", "positions")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.keywords: list[str] = []


class _Scan:
    """Everything one `detect` call learns about its text: the automaton's matches (in the
    order they end), literal and dictionary hits, keyword-anchored detectors' keywords."""

    __slots__ = (
        "ends",
        "header_ctx",
        "keep_runs",
        "literals",
        "low",
        "matches",
        "part",
        "records",
        "run_counts",
        "runs",
        "terms",
        "text",
        "triggers",
    )

    def __init__(self, part: Part) -> None:
        self.part = part
        self.text = _folded(part.text)
        self.low = ""
        self.matches: list[tuple[int, int, int]] = []
        self.ends: list[int] | None = None
        self.triggers: dict[int, _Words] = {}
        self.literals: list[tuple[int, _Detector]] = []
        self.terms: list[_Hit] = []
        self.header_ctx: dict[int, dict[int, str]] | None = None
        self.records: list[int] | None = None
        self.runs: list[Candidate] = []
        self.keep_runs = False
        self.run_counts: RunCounts | None = None

    def keyword(self, table: dict[int, str], lo: int, hi: int, longest: int) -> str | None:
        """The keyword of `table` (automaton key index -> keyword) standing as a whole word and
        starting earliest in [lo, hi], or None."""
        found = self._words(table, lo, hi, longest)
        return min(found)[2] if found else None

    def latest(self, table: dict[int, str], lo: int, hi: int, longest: int) -> tuple[int, str] | None:
        """The keyword of `table` standing as a whole word and starting latest in [lo, hi],
        with the offset where it ends, or None."""
        found = self._words(table, lo, hi, longest)
        if not found:
            return None
        _, stop, keyword = max(found, key=_start_then_shortest)
        return stop, keyword

    def _words(self, table: dict[int, str], lo: int, hi: int, longest: int) -> list[tuple[int, int, str]]:
        """(start, end, keyword) of each keyword of `table` standing as a whole word and starting
        in [lo, hi]: a binary search in the match ends, then a look at the few matches ending in
        range (a keyword far from every candidate costs nothing)."""
        ends = self.ends
        if ends is None:
            ends = self.ends = [match[2] for match in self.matches]
        matches, low = self.matches, self.low
        i = bisect.bisect_left(ends, lo + 1)
        limit = hi + longest
        count = len(ends)
        found = []
        while i < count and ends[i] <= limit:
            key, start, stop = matches[i]
            i += 1
            keyword = table.get(key)
            if keyword is not None and lo <= start <= hi and _is_word(low, start, stop - start):
                found.append((start, stop, keyword))
        return found


def _start_then_shortest(word: tuple[int, int, str]) -> tuple[int, int]:
    """Order of (start, end, keyword) matches for `max`: latest start, at one start the shortest."""
    return word[0], -word[1]


def _folded(text: str) -> str:
    """The text with every Unicode decimal digit (full-width, Arabic-Indic, Devanagari ...) as
    its ASCII digit, every other space (no-break, narrow, ideographic) and invisible
    separator (zero-width space, word joiner, BOM) as a space, and every dash and minus
    sign as a hyphen: one character for one, so `4539&nbsp;1488 ...` or `536` U+2011 `22-1234`
    is found like its ASCII form (and hashed the same) at the same offsets. ASCII text is
    returned as is."""
    if text.isascii():
        return text
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    if points.max() < _FIRST_FOLDED_BEYOND_LATIN1:
        return text.replace("\u00a0", " ").replace("\u00ad", " ")
    table = _fold_table()
    inside = points < table.size
    folded = np.where(inside, table[np.where(inside, points, 0)], points)
    if np.array_equal(folded, points):
        return text
    return folded.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


_FIRST_FOLDED_BEYOND_LATIN1 = 0x58A
"""ARMENIAN HYPHEN: in text below it, `_folded` changes only the no-break space and the soft hyphen."""
_INVISIBLE_SEPARATORS = "\u00ad\u180e\u200b\u200c\u200d\u2060\ufeff"
"""Soft hyphen, Mongolian vowel separator, zero-width space, non-joiner and joiner, word
joiner, zero-width no-break space: invisible between two digits, so read as a space."""


@functools.cache
def _fold_table() -> npt.NDArray[np.uint32]:
    """The `_folded` translation as an array: code point -> code point, up to the last one
    that changes. Built on first need, from one pass over every code point: about 50 ms."""
    codes = np.arange(128, sys.maxunicode + 1, dtype=np.uint32)
    every = codes.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
    fold = {ord(c): str(unicodedata.decimal(c)) for c in re.findall(r"\d", every)}
    fold.update((ord(c), " ") for c in regex.findall(r"\p{Zs}", every) + list(_INVISIBLE_SEPARATORS))
    fold.update((ord(c), "-") for c in regex.findall(r"[\p{Pd}\u2212]", every))
    table = np.arange(max(fold) + 1, dtype=np.uint32)
    table[list(fold)] = [ord(ascii_char) for ascii_char in fold.values()]
    return table


def _lowered(text: str) -> str:
    """The text in lower case with the same length (characters whose lower case is longer
    than one character are kept as they are), so offsets stay valid."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _is_word(text: str, pos: int, size: int) -> bool:
    """Whether `text[pos:pos + size]` stands as a whole word (a plural 's' allowed after it)."""
    if pos and text[pos - 1].isalnum():
        return False
    end = pos + size
    if end < len(text) and text[end].isalnum():
        return text[end] == "s" and (end + 1 >= len(text) or not text[end + 1].isalnum())
    return True


def _find(automaton: ahocorasick_rs.BytesAhoCorasick, low: str) -> list[tuple[int, int, int]]:
    """Every (pattern index, start, end) in the lower-cased text, overlaps included, as
    character offsets. The automaton runs over UTF-8 bytes (over twice as fast as over a
    `str`): for ASCII text bytes are characters; otherwise byte offsets are mapped back to
    character offsets (lone surrogates, from text decoded with `surrogateescape`, pass as
    three bytes each and match no key)."""
    data = low.encode("utf-8", "surrogatepass")
    matches: list[tuple[int, int, int]] = automaton.find_matches_as_indexes(data, overlapping=True)
    if len(data) == len(low) or not matches:
        return matches
    lead = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80
    chars = np.concatenate(([0], np.cumsum(lead)))
    found = np.array(matches, dtype=np.int64)
    found[:, 1] = chars[found[:, 1]]
    found[:, 2] = chars[found[:, 2]]
    return [(key, start, end) for key, start, end in found.tolist()]


def _is_term(text: str, start: int, end: int) -> bool:
    """Whether `text[start:end]` is bounded by non-word characters (no plural allowed)."""
    if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
        return False
    return end >= len(text) or not (text[end].isalnum() or text[end] == "_")


def _keyword_in(cell: str, keywords: Iterable[str]) -> str | None:
    """The first keyword occurring in a header cell as a whole word."""
    for keyword in keywords:
        pos = cell.find(keyword)
        while pos >= 0:
            if _is_word(cell, pos, len(keyword)):
                return keyword
            pos = cell.find(keyword, pos + 1)
    return None


class Engine:
    """Every loaded detector, compiled once; `detect(part)` is safe to call from many threads."""

    def __init__(
        self, definitions: Sequence[Definition], hash_key: bytes, trusted: Iterable[str] = ()
    ) -> None:
        self._hash = KeyedHasher(hash_key)
        trusted_ids = set(trusted)
        scanning = [d for d in definitions if d.anchor != "table"]
        self._all = [_Detector(d, i, d.id in trusted_ids) for i, d in enumerate(scanning)]
        self._aggregates = [
            (d, AGGREGATES[d.aggregate], AGGREGATES[d.aggregate].prepare(d.params))
            for d in definitions
            if d.anchor == "table" and d.aggregate is not None
        ]
        self._by_anchor: dict[str, list[_Detector]] = {}
        for det in self._all:
            self._by_anchor.setdefault(det.d.anchor, []).append(det)
            # A pattern that names another anchor runs there, in a view of its detector that
            # holds only such patterns (same index: same keywords, context and findings).
            for anchor in sorted({p.anchor for p in det.d.patterns if p.anchor not in (None, det.d.anchor)}):
                assert anchor is not None
                view = _Detector(det.d, det.index, det.d.id in trusted_ids, anchor)
                self._by_anchor.setdefault(anchor, []).append(view)
        self._by_digits: list[tuple[_Detector, ...]] = [
            tuple(det for det in self._by_anchor.get("digits", ()) if det.d.digits[0] <= n <= det.d.digits[1])
            for n in range(_MAX_DIGITS + 1)
        ]
        self._context_keys: list[dict[int, str]] = [{} for _ in self._all]
        self._negative_keys: list[dict[int, str]] = [{} for _ in self._all]
        self._eager: dict[int, tuple[tuple[str, int, str], ...]] = {}
        self._longest = 0
        self._digit_plans = [_DigitPlan(dets) if dets else None for dets in self._by_digits]
        self._automaton = self._build_automaton()
        self._headers: dict[tuple[str, ...], dict[int, dict[int, str]]] = {}
        self._infos = tuple(
            DetectorInfo(d.id, d.description, d.category, d.regulations, d.rules_summary(), d.source)
            for d in sorted(definitions, key=lambda d: d.id)
        )

    def _build_automaton(self) -> ahocorasick_rs.BytesAhoCorasick | None:
        """One automaton for every keyword, negative keyword, literal and dictionary term of
        every detector. Keywords are looked up per candidate (`_context_keys`, `_negative_keys`:
        per detector, key index -> keyword); literals, dictionary terms and the keywords of
        keyword-anchored detectors are handled as the matches come (`_eager`)."""
        entries: dict[str, list[tuple[str, int, str]]] = {}
        for det in self._all:
            for keyword in det.d.keywords:
                entries.setdefault(keyword, []).append(("c", det.index, keyword))
            for keyword in det.d.negative_keywords:
                entries.setdefault(keyword, []).append(("n", det.index, keyword))
            for literal in det.d.literals:
                entries.setdefault(literal.lower(), []).append(("l", det.index, literal))
            if det.d.dictionary is not None:
                term_entry = ("d", det.index, "")
                for term in det.d.dictionary.terms:
                    entries.setdefault(term, []).append(term_entry)
        if not entries:
            return None
        keys = list(entries)
        for key_index, key_entries in enumerate(entries.values()):
            eager = []
            for kind, index, original in key_entries:
                if kind == "c":
                    self._context_keys[index][key_index] = original
                elif kind == "n":
                    self._negative_keys[index][key_index] = original
                if kind in "ld" or (kind == "c" and self._all[index].d.anchor == "keyword"):
                    eager.append((kind, index, original))
                if kind in "cn":
                    self._longest = max(self._longest, len(original))
            if eager:
                self._eager[key_index] = tuple(eager)
        implementation = ahocorasick_rs.Implementation.DFA if len(keys) <= _DFA_KEYS else None
        return ahocorasick_rs.BytesAhoCorasick([key.encode() for key in keys], implementation=implementation)

    @classmethod
    def from_folders(cls, folders: Sequence[Path], hash_key: bytes) -> Engine:
        """Load every `*.yaml` definition in the folders; the first is the built-in folder.

        A later folder's definition with the same id replaces the earlier one. Regexes from
        the built-in folder run without a timeout; any other definition's regexes run with
        one, so a user-supplied pattern cannot stall a scan.
        """
        aggregates = {name: agg.check for name, agg in AGGREGATES.items()}
        definitions = load_folders(folders, aggregates)
        builtin = folders[0].resolve() if folders else None
        trusted = [d.id for d in definitions if Path(d.source).resolve().parent == builtin]
        return cls(definitions, hash_key, trusted)

    @property
    def detectors(self) -> tuple[DetectorInfo, ...]:
        """What is loaded, sorted by id."""
        return self._infos

    # ------------------------------------------------------------------ scanning

    def detect(
        self, part: Part, values: list[Candidate] | None = None, run_counts: RunCounts | None = None
    ) -> list[Finding]:
        """Every finding in the part, offsets relative to the whole part (chunk offset added).

        When `values` is given, the candidates this scan saw are appended to it for exact data
        match, in process and never serialised: each finding's raw value under its detector id,
        and the digit runs under `DIGIT_RUN` (offsets relative to the part's text), so the
        matcher needs no scan of its own. `run_counts` (digit counts, longest) narrows the runs
        to those the matcher can use: a count in the set, or more digits than the longest with
        a space (its groups may be one); without it every run is handed over.
        """
        scan = _Scan(part)
        scan.keep_runs, scan.run_counts = values is not None, run_counts
        hits: list[_Hit] = []
        if part.text:
            self._keywords(scan)
            self._anchored(scan, hits)
            self._triggered(scan, hits)
        kept = self._kept(self._score(scan, hits))
        if values is not None:
            values.extend(scan.runs)
            values.extend((item.hit.det.d.id, item.hit.value, item.hit.start, item.hit.end) for item in kept)
        findings = self._findings(part, kept)
        if self._aggregates:
            findings.extend(self._aggregate(part, findings))
        return findings

    def _keywords(self, scan: _Scan) -> None:
        """The one Aho-Corasick pass. Its matches are kept for context lookups; literal
        positions, dictionary hits and keyword-anchored detectors' keywords are taken now."""
        if self._automaton is None:
            return
        low = scan.low = _lowered(scan.text)
        text = scan.text
        literals, triggers, dets, eager = scan.literals, scan.triggers, self._all, self._eager
        matches = scan.matches = _find(self._automaton, low)
        for key, start, stop in matches:
            entries = eager.get(key)
            if entries is None:
                continue
            for kind, index, original in entries:
                if kind == "l":
                    if text.startswith(original, start):
                        literals.append((start, dets[index]))
                elif kind == "d":
                    if _is_term(low, start, stop):
                        det = dets[index]
                        assert det.d.dictionary is not None
                        scan.terms.append(_Hit(det, det.d.dictionary, start, stop, text[start:stop]))
                elif _is_word(low, start, stop - start):
                    words = triggers.get(index)
                    if words is None:
                        words = triggers[index] = _Words()
                    words.positions.append(start)
                    words.keywords.append(original)

    def _anchored(self, scan: _Scan, hits: list[_Hit]) -> None:
        text = scan.text
        n = len(text)
        kinds = classes(text)
        if "digits" in self._by_anchor or scan.keep_runs:
            plans, candidate = self._digit_plans, _digit_candidate
            keep, kept = scan.keep_runs, scan.runs
            wanted, longest = scan.run_counts or (None, 0)
            for start, end in digit_runs(kinds):
                seg = text[start:end]
                count = kinds.count(DIGIT, start, end)
                if keep and (wanted is None or count in wanted or (count > longest and " " in seg)):
                    kept.append((DIGIT_RUN, seg, start, end))
                if count <= _MAX_DIGITS:
                    plan = plans[count]
                    if plan is not None and (plan.needs is None or any(need in seg for need in plan.needs)):
                        candidate(plan, text, start, end, seg, hits)
                if count > _SUBRUN_MIN_DIGITS and " " in seg:
                    pos = start
                    for token in seg.split(" "):
                        size = len(token)
                        if size >= _SUBRUN_MIN_DIGITS:
                            tcount = kinds.count(DIGIT, pos, pos + size)
                            if _SUBRUN_MIN_DIGITS <= tcount <= _MAX_DIGITS and tcount != count:
                                plan = plans[tcount]
                                if plan is not None:
                                    candidate(plan, text, pos, pos + size, token, hits)
                        pos += size + 1
        for det in self._by_anchor.get("letters-digits", ()):
            for pos in letters_digits(kinds):
                self._match_at(det, text, pos, min(n, pos + _IBAN_SPAN), hits)
        for det in self._by_anchor.get("hex-colon", ()):
            for pos in hex_colons(text):
                self._around(det, text, pos, max(0, pos - _HEX_BEFORE), min(n, pos + _HEX_AFTER), hits)
        emails = self._by_anchor.get("email")
        if emails:
            for pos in find_all(text, "@"):
                for det in emails:
                    self._around(
                        det, text, pos, max(0, pos - _EMAIL_BEFORE), min(n, pos + _EMAIL_AFTER), hits
                    )
        for pos, det in scan.literals:
            self._match_at(det, text, pos, min(n, pos + _LITERAL_SPAN), hits)
        hits.extend(scan.terms)

    def _match_at(self, det: _Detector, text: str, pos: int, hi: int, hits: list[_Hit]) -> None:
        """Patterns anchored at a position: one attempt each, starting exactly there."""
        for pattern in det.patterns:
            try:
                match = pattern.match(text, pos, hi)
            except TimeoutError:
                continue
            if match is not None:
                s, e = match.span("value")
                hits.append(_Hit(det, pattern.d, s, e, match.group("value")))

    def _around(self, det: _Detector, text: str, anchor: int, lo: int, hi: int, hits: list[_Hit]) -> None:
        """The first match of each pattern in [lo, hi) that covers `anchor`."""
        for pattern in det.patterns:
            for match in _matches(pattern, text, lo, hi, stop=anchor):
                s, e = match.span("value")
                if s <= anchor < e:
                    hits.append(_Hit(det, pattern.d, s, e, match.group("value")))
                    break

    def _triggered(self, scan: _Scan, hits: list[_Hit]) -> None:
        """Detectors anchored on keywords: patterns run only in windows after a keyword, and
        over the whole text of a table with a column whose header names them."""
        dets = self._by_anchor.get("keyword")
        if not dets:
            return
        text = scan.text
        n = len(text)
        for det in dets:
            if scan.part.table is not None and det.index in self._header_context(scan):
                windows = [(0, n)]
            else:
                words = scan.triggers.get(det.index)
                if words is None:
                    continue
                before = det.d.window // _BACKWARD
                after = det.d.window
                spans = zip(words.positions, words.keywords, strict=True)
                windows = _merge([(max(0, p - before), min(n, p + len(k) + after)) for p, k in spans])
            for lo, hi in windows:
                for pattern in det.patterns:
                    for match in _matches(pattern, text, lo, hi, stop=hi):
                        s, e = match.span("value")
                        hits.append(_Hit(det, pattern.d, s, e, match.group("value")))

    def _header_context(self, scan: _Scan) -> dict[int, dict[int, str]]:
        """For each detector index: the columns whose header cell carries one of its keywords
        (cached per header: every chunk of a large table carries the same one)."""
        if scan.header_ctx is None:
            table = scan.part.table
            header = table.header if table is not None else ()
            cached = self._headers.get(header)
            if cached is None:
                cached = {}
                cells = [normalise_header(c) for c in header]
                for det in self._all:
                    keywords = det.d.keywords + det.d.column_keywords
                    for index, cell in enumerate(cells):
                        if _keyword_in(cell, keywords):
                            cached.setdefault(det.index, {})[index] = header[index].strip()
                if len(self._headers) >= _HEADER_CACHE:
                    self._headers.clear()
                self._headers[header] = cached
            scan.header_ctx = cached
        return scan.header_ctx

    def _column_context(self, scan: _Scan, det: _Detector, start: int) -> str | None:
        columns = self._header_context(scan).get(det.index)
        if not columns:
            return None
        table = scan.part.table
        assert table is not None
        if scan.records is None:
            scan.records = record_starts(scan.text, table.delimiter)
        return columns.get(column_of(scan.text, start, table, scan.records))

    def _score(self, scan: _Scan, hits: list[_Hit]) -> list[_Scored]:
        out: list[_Scored] = []
        seen: set[tuple[int, int, int]] = set()
        for hit in hits:
            det = hit.det
            key = (det.index, hit.start, hit.end)
            if key in seen:
                continue
            seen.add(key)
            scored = self._judge(scan, hit)
            if scored is not None:
                out.append(scored)
        return out

    def _judge(self, scan: _Scan, hit: _Hit) -> _Scored | None:
        """Context, validator, filters, negative keywords and exclusions -> confidence.

        A match that needs context has it looked up first (a binary search) and is dropped
        without it before its validator (which may be costly) runs; any other match is
        validated first, so a value the validator rejects costs no context lookup.
        """
        det = hit.det
        d = det.d
        value = hit.value
        pattern = hit.pattern
        needs_context = pattern.requires_context
        context = self._context(scan, det, hit) if needs_context else None
        if needs_context and context is None:
            return None
        level = int(pattern.confidence)
        notes = [f"pattern {pattern.id}"]
        if det.validator is not None:
            verdict = det.validator(value)
            if verdict is False:
                return None
            if verdict:
                level += d.raise_valid
            notes.append(f"validator {d.validator}: {'pass' if verdict else 'undecided'}")
        for check in det.filters:
            if check(value) is False:
                return None
        if not needs_context:
            context = self._context(scan, det, hit)
        if context is not None:
            level += d.raise_context
            notes.append(f"context {context}")
        negatives = self._negative_keys[det.index]
        if negatives:
            negative = scan.latest(negatives, hit.start - d.negative_window, hit.start - 1, self._longest)
            if negative is not None and not self._overruled(scan, det, negative[0], hit.start):
                level -= d.lower_negative
                notes.append(f"negative {negative[1]}")
        if det.exclude and det.hash_norm(value) in det.exclude:
            if d.exclude_action == "drop":
                return None
            level = int(Confidence.LOW)
            notes.append("excluded value")
        if level < int(Confidence.LOW):
            return None
        return _Scored(hit, min(level, int(Confidence.HIGH)), context is not None, "; ".join(notes))

    def _overruled(self, scan: _Scan, det: _Detector, after: int, start: int) -> bool:
        """Whether a negative keyword ending at `after` does not describe the value starting at
        `start`: it lies in another cell of a table ('Henry,Case,6607750620'), a sentence ends
        between them ('... recurring invoices. SSN 325249335') or one of the detector's own
        keywords labels the value ('Case #91387666 tel 8486018506')."""
        table = scan.part.table
        if table is not None and scan.text.find(table.delimiter, after, start) >= 0:
            return True
        if _SENTENCE_END.search(scan.text, after, start) is not None:
            return True
        keywords = self._context_keys[det.index]
        return bool(keywords) and scan.keyword(keywords, after, start - 1, self._longest) is not None

    def _context(self, scan: _Scan, det: _Detector, hit: _Hit) -> str | None:
        """A keyword of the detector within its window, or the value's column header."""
        keywords = self._context_keys[det.index]
        if keywords:
            window = det.d.window
            keyword = scan.keyword(keywords, hit.start - window, hit.end + window, self._longest)
            if keyword is not None:
                return keyword
        if scan.part.table is not None:
            column = self._column_context(scan, det, hit.start)
            if column is not None:
                return f"column '{column}'"
        return None

    def _kept(self, scored: list[_Scored]) -> list[_Scored]:
        """Drop a match that overlaps a stronger one (higher confidence, or equal confidence
        with context against none) of another detector."""
        kept: list[_Scored] = []
        for cluster in _clusters(scored):
            if len(cluster) == 1:
                kept.extend(cluster)
                continue
            taken: list[_Scored] = []
            for item in sorted(cluster, key=lambda s: (-s.level, -s.context, s.hit.start)):
                hit = item.hit
                if not any(
                    o.hit.start < hit.end
                    and hit.start < o.hit.end
                    and (item.level, item.context) < (o.level, o.context)
                    for o in taken
                ):
                    taken.append(item)
            kept.extend(sorted(taken, key=_TEXT_ORDER))
        return kept

    def _findings(self, part: Part, kept: list[_Scored]) -> list[Finding]:
        """Each kept match as a finding: masked preview and keyed hash, never the value."""
        offset = part.offset
        location = part.location
        new, levels, keyed = Finding.of, _LEVELS, self._hash
        out = []
        for item in kept:
            hit = item.hit
            det = hit.det
            d = det.d
            value = hit.value
            out.append(
                new(
                    d.id,
                    d.category,
                    location,
                    offset + hit.start,
                    offset + hit.end,
                    levels[item.level],
                    det.mask(value),
                    keyed(det.hash_norm(value)),
                    item.note,
                    d.regulations,
                )
            )
        return out

    def _aggregate(self, part: Part, findings: Sequence[Finding]) -> list[Finding]:
        located = [(f.detector, f.start - part.offset) for f in findings]
        out = []
        for d, aggregate, prepared in self._aggregates:
            result = aggregate.run(part.text, part.table, located, prepared, part.offset)
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
                    preview=result.preview,
                    hash=self._hash(result.fingerprint),
                    explanation=result.explanation,
                    regulations=d.regulations,
                    count=result.count,
                    attributes=dict(result.attributes),
                )
            )
        return out


def _clusters(scored: list[_Scored]) -> list[list[_Scored]]:
    """Matches grouped into runs of overlapping spans, in text order."""
    out: list[list[_Scored]] = []
    end = -1
    for item in sorted(scored, key=_TEXT_ORDER):
        if item.hit.start < end:
            out[-1].append(item)
            end = max(end, item.hit.end)
        else:
            out.append([item])
            end = item.hit.end
    return out


def _digit_candidate(plan: _DigitPlan, text: str, start: int, end: int, seg: str, hits: list[_Hit]) -> None:
    """The first match of each of the count's detectors in a few characters around the run
    `seg` = text[start:end], when the prefilter finds one at all."""
    lo = start - _DIGIT_BEFORE if start > _DIGIT_BEFORE else 0
    hi = min(len(text), end + _DIGIT_AFTER)
    prefilter = plan.prefilter
    if prefilter is not None and prefilter(text, lo, hi) is None:
        return
    for det, contains, combined, groups, patterns in plan.steps:
        if contains and contains not in seg:
            continue
        if combined is not None:
            match = combined(text, lo, hi)
            if match is not None:
                for group, pattern_def in groups:
                    s = match.start(group)
                    if s >= 0:
                        e = match.end(group)
                        hits.append(_Hit(det, pattern_def, s, e, text[s:e]))
                        break
            continue
        for pattern in patterns:
            try:
                found = pattern.search(text, lo, hi)
            except TimeoutError:
                continue
            if found is not None:
                s, e = found.span("value")
                hits.append(_Hit(det, pattern.d, s, e, found.group("value")))


def _prefilter(dets: Sequence[_Detector]) -> re.Pattern[str] | None:
    """For the detectors of one digit count (two or more, all built-in): every pattern of
    every one as one alternation. It finds no match in a region exactly when none of them
    does, so most digit runs (order numbers, dates) cost one search instead of one per
    detector."""
    if len(dets) < 2 or not all(p.stdlib for det in dets for p in det.patterns):
        return None
    return _alternation([p.d for det in dets for p in det.patterns])


def _matches(pattern: _Pattern, text: str, lo: int, hi: int, stop: int) -> Iterator[Any]:
    """Successive matches of `pattern` in text[lo:hi] that start searching before `stop`;
    a user pattern that times out ends the search for that window."""
    pos = lo
    while pos < stop:
        try:
            match = pattern.search(text, pos, hi)
        except TimeoutError:
            return
        if match is None:
            return
        yield match
        pos = max(match.end(), pos + 1)


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
