"""Finding our own customers' records in a part: candidates -> keyed hashes -> records.

The matcher runs no scan of its own over prose: `Engine.detect(part, values)` hands it
what the engine already found (the raw value of every kept finding, every digit run it
scanned), and the matcher keeps the e-mail addresses and the digit runs whose length fits
the index. Names are tried only on the lines holding a matched strong value (capitalised
word runs); a table part is read cell by cell. Each candidate is normalised and hashed
like the index did and looked up in one vectorised search. A record counts when it
matched on two or more columns, or on one strong column (e-mail, phone, number): a name
alone is weak. The finding says how many records matched (`records`), the most columns
one record matched on (`columns`, what policies' `min_columns` compares), the column
combination most records matched on (`column_names`) and how many records matched on at
least N columns (`records_min_columns_N`), never which values.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import regex

from dlp.detect import DIGIT_RUN, Candidate
from dlp.edm.index import SUFFIX, EdmIndex
from dlp.edm.normalise import STRONG_KINDS, keyed_hash, normalise
from dlp.model import Confidence, Finding, Part

__all__ = ["EMAIL_DETECTOR", "EdmMatcher", "detector_id"]

EMAIL_DETECTOR = "email-address"
"""The engine detector whose values are e-mail candidates."""

_NAME_RUN = regex.compile(r"\b\p{Lu}[\p{L}'-]{0,40}(?:[ \t]+\p{Lu}[\p{L}'-]{0,40}){0,3}\b")
_MAX_NAME_WORDS = 4
_DIGIT_KINDS = ("phone", "number")
_NAME_KINDS = ("name", "text")
# A phone written without its country code ("(415) 555-0100") or with "00" before it has a
# few digits fewer or more than its E.164 form in the index.
_NATIONAL_SLACK = 3
_INTERNATIONAL_SLACK = 2
# An over-long run ("Ref 88412 415 555 0100") is also tried as groups of up to this many of
# its space-separated tokens.
_MAX_GROUP_TOKENS = 4
_MAX_RUN_TOKENS = 32


def detector_id(index_name: str) -> str:
    """The finding's detector id for an index: `edm:<name>`."""
    return f"edm:{index_name}"


@dataclass(frozen=True)
class _Candidate:
    kind: str
    value: str
    start: int
    end: int


class EdmMatcher:
    """Every loaded index, matched against each part."""

    def __init__(self, indexes: list[EdmIndex], secret: bytes, hash_key: bytes) -> None:
        self.indexes = indexes
        self._secret = secret
        self._hash_key = hash_key

    @classmethod
    def load(cls, folder: Path, secret: bytes, hash_key: bytes) -> EdmMatcher:
        """Load every `*.edm` index in the folder (none is fine: the matcher does nothing)."""
        paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
        return cls([EdmIndex(path) for path in paths], secret, hash_key)

    def detect(self, part: Part, values: Sequence[Candidate]) -> list[Finding]:
        """One `edm:<name>` finding per index that matched records in this part.

        `values` are the candidates `Engine.detect(part, values)` collected from the same
        part (offsets relative to its text): the matcher reuses them instead of scanning
        the text again.
        """
        if not self.indexes or not part.text:
            return []
        findings = []
        for index in self.indexes:
            finding = self._match(index, part, values)
            if finding is not None:
                findings.append(finding)
        return findings

    def _lookup(
        self,
        index: EdmIndex,
        candidates: Iterable[_Candidate],
        matched: dict[int, set[int]],
        spans: list[tuple[int, int]],
    ) -> list[_Candidate]:
        """Hash the candidates, look them up in one search, record what matched; return
        the candidates that matched (their lines are where names are worth trying)."""
        by_hash: dict[int, _Candidate] = {}
        for candidate in candidates:
            value = normalise(candidate.kind, candidate.value, index.region)
            if value is not None:
                by_hash.setdefault(keyed_hash(self._secret, candidate.kind, value), candidate)
        if not by_hash:
            return []
        hit_hashes = set()
        for value_hash, record, column in index.lookup(list(by_hash)):
            matched.setdefault(record, set()).add(column)
            hit_hashes.add(value_hash)
        hits = [by_hash[value_hash] for value_hash in hit_hashes]
        spans.extend((c.start, c.end) for c in hits)
        return hits

    def _match(self, index: EdmIndex, part: Part, values: Sequence[Candidate]) -> Finding | None:
        matched: dict[int, set[int]] = {}
        spans: list[tuple[int, int]] = []
        kinds = index.kinds
        if part.table is not None:
            self._lookup(index, _table_candidates(part, kinds), matched, spans)
        else:
            strong = _strong_candidates(part.text, values, kinds, index.digit_widths)
            hits = self._lookup(index, strong, matched, spans)
            if hits:
                lines = {_line_start(part.text, c.start) for c in hits}
                self._lookup(index, _name_candidates(part.text, kinds, lines), matched, spans)
        if not matched:
            return None
        counted = {
            record: columns
            for record, columns in matched.items()
            if len(columns) >= 2 or any(index.columns[c].kind in STRONG_KINDS for c in columns)
        }
        if not counted:
            return None
        combos = Counter(
            "+".join(index.columns[c].name for c in sorted(columns)) for columns in counted.values()
        )
        combo, _ = combos.most_common(1)[0]
        strongest = max(len(c) for c in counted.values())
        attributes: dict[str, int | str] = {
            "index": index.name,
            "records": len(counted),
            "columns": strongest,
            "column_names": combo,
        }
        for minimum in range(2, len(index.columns) + 1):
            attributes[f"records_min_columns_{minimum}"] = sum(
                1 for c in counted.values() if len(c) >= minimum
            )
        digest = hmac.new(
            self._hash_key,
            f"edm:{index.name}:{','.join(str(r) for r in sorted(counted))}".encode(),
            hashlib.sha256,
        ).hexdigest()
        return Finding(
            detector=detector_id(index.name),
            category="crm",
            location=part.location,
            start=part.offset + min(s for s, _ in spans),
            end=part.offset + max(e for _, e in spans),
            confidence=Confidence.HIGH if strongest >= 2 else Confidence.MEDIUM,
            preview=f"{len(counted)} records",
            hash=f"hmac-sha256:{digest}",
            explanation=f"{len(counted)} records of index {index.name} matched, most on {combo}",
            regulations=("gdpr", "ccpa"),
            count=len(counted),
            attributes=attributes,
        )


def _line_start(text: str, position: int) -> int:
    return text.rfind("\n", 0, position) + 1


def _digit_count(value: str) -> int:
    return sum(ch.isdigit() for ch in value)


def _strong_candidates(
    text: str, values: Sequence[Candidate], kinds: frozenset[str], widths: tuple[int, int]
) -> Iterator[_Candidate]:
    """E-mail findings and the digit runs that could be an indexed phone or number."""
    want_email = "email" in kinds
    number_kinds = [k for k in _DIGIT_KINDS if k in kinds]
    low, high = widths[0] - _NATIONAL_SLACK, widths[1] + _INTERNATIONAL_SLACK
    for source, value, start, end in values:
        if source == DIGIT_RUN:
            if number_kinds:
                yield from _digit_candidates(text, value, start, end, number_kinds, low, high)
        elif source == EMAIL_DETECTOR and want_email:
            yield _Candidate("email", value, start, end)


def _digit_candidates(
    text: str, run: str, start: int, end: int, kinds: list[str], low: int, high: int
) -> Iterator[_Candidate]:
    """A run that fits the index's widths ("+" kept when written before it); an over-long
    run's groups of consecutive space-separated tokens that fit."""
    count = _digit_count(run)
    if count < low:
        return
    if count <= high:
        if start and text[start - 1] == "+":
            start, run = start - 1, "+" + run
        for kind in kinds:
            yield _Candidate(kind, run, start, end)
        return
    tokens: list[tuple[int, str]] = []
    position = start
    for token in run.split(" ")[:_MAX_RUN_TOKENS]:
        if token:
            tokens.append((position, token))
        position += len(token) + 1
    for i, (first, _) in enumerate(tokens):
        digits = 0
        for last, token in tokens[i : i + _MAX_GROUP_TOKENS]:
            digits += _digit_count(token)
            if digits > high:
                break
            if digits >= low:
                stop = last + len(token)
                for kind in kinds:
                    yield _Candidate(kind, text[first:stop], first, stop)


def _name_candidates(text: str, kinds: frozenset[str], lines: set[int]) -> Iterator[_Candidate]:
    name_kinds = [k for k in _NAME_KINDS if k in kinds]
    for begin in sorted(lines) if name_kinds else ():
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        for match in _NAME_RUN.finditer(text, begin, end):
            for phrase, start, stop in _sub_phrases(match.group(), match.start()):
                for kind in name_kinds:
                    yield _Candidate(kind, phrase, start, stop)


def _sub_phrases(run: str, offset: int) -> Iterator[tuple[str, int, int]]:
    words = [(m.group(), m.start()) for m in regex.finditer(r"\S+", run)]
    for i in range(len(words)):
        for j in range(i, min(len(words), i + _MAX_NAME_WORDS)):
            start = words[i][1]
            stop = words[j][1] + len(words[j][0])
            yield run[start:stop], offset + start, offset + stop


def _table_candidates(part: Part, kinds: frozenset[str]) -> Iterator[_Candidate]:
    assert part.table is not None
    position = 0
    for line in part.text.splitlines(keepends=True):
        start, position = position, position + len(line)
        for cell in next(csv.reader([line], delimiter=part.table.delimiter), []):
            cell = cell.strip()
            if not cell:
                continue
            if "@" in cell:
                if "email" in kinds:
                    yield _Candidate("email", cell, start, position)
                continue
            digits = _digit_count(cell)
            if digits >= 4 and digits * 2 >= len(cell):
                for kind in _DIGIT_KINDS:
                    if kind in kinds:
                        yield _Candidate(kind, cell, start, position)
                continue
            for kind in _NAME_KINDS:
                if kind in kinds:
                    yield _Candidate(kind, cell, start, position)
