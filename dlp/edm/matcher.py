"""Finding our own customers' records in a part: candidates -> keyed hashes -> records.

Candidates are the values a leak would carry: e-mail addresses, phone and account
numbers anywhere, names near them (capitalised word runs on the lines that hold a strong
candidate), and every cell of a table. Each candidate is normalised and hashed like the
index did and looked up in one vectorised search. A record counts when it matched on two
or more columns, or on one strong column (e-mail, phone, number): a name alone is weak.
The finding says how many records matched and on which columns, never which values.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import regex

from dlp.edm.index import SUFFIX, EdmIndex
from dlp.edm.normalise import STRONG_KINDS, keyed_hash, normalise
from dlp.model import Confidence, Finding, Part

__all__ = ["EdmMatcher", "detector_id"]

_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+-]{1,64}$")
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}")


@functools.lru_cache(maxsize=16)
def _number_pattern(low: int, high: int) -> re.Pattern[str]:
    """Digit runs (with separators) no shorter than the index's shortest number: the
    tighter the bound, the fewer candidates the scan hands to Python."""
    return re.compile(rf"\d[\d ().-]{{{max(2, low - 2)},{max(low, high) + 6}}}\d")


_NAME_RUN = regex.compile(r"\b\p{Lu}[\p{L}'-]{0,40}(?:[ \t]+\p{Lu}[\p{L}'-]{0,40}){0,3}\b")
_MAX_NAME_WORDS = 4


def detector_id(index_name: str) -> str:
    """The finding's detector id for an index: `edm:<name>`."""
    return f"edm:{index_name}"


@dataclass(frozen=True)
class _Candidate:
    kind: str
    value: str
    start: int
    end: int
    line: int


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

    def detect(self, part: Part) -> list[Finding]:
        """One `edm:<name>` finding per index that matched records in this part."""
        if not self.indexes or not part.text:
            return []
        findings = []
        for index in self.indexes:
            finding = self._match(index, part)
            if finding is not None:
                findings.append(finding)
        return findings

    def _lookup(
        self,
        index: EdmIndex,
        candidates: Iterator[_Candidate],
        matched: dict[int, set[int]],
        spans: list[tuple[int, int]],
    ) -> set[int]:
        """Hash the candidates, look them up in one search, record what matched; return the
        start offsets of the lines holding a match (where names are worth trying)."""
        by_hash: dict[int, _Candidate] = {}
        for candidate in candidates:
            value = normalise(candidate.kind, candidate.value, index.region)
            if value is not None:
                by_hash.setdefault(keyed_hash(self._secret, candidate.kind, value), candidate)
        hit_hashes = set()
        for value_hash, record, column in index.lookup(list(by_hash)):
            matched.setdefault(record, set()).add(column)
            hit_hashes.add(value_hash)
        lines = set()
        for value_hash in hit_hashes:
            candidate = by_hash[value_hash]
            spans.append((candidate.start, candidate.end))
            lines.add(candidate.line)
        return lines

    def _match(self, index: EdmIndex, part: Part) -> Finding | None:
        matched: dict[int, set[int]] = {}
        spans: list[tuple[int, int]] = []
        kinds = index.kinds
        if part.table is not None:
            self._lookup(index, _table_candidates(part, kinds), matched, spans)
        else:
            strong = _strong_candidates(part.text, kinds, index.digit_widths)
            hit_lines = self._lookup(index, strong, matched, spans)
            if hit_lines:
                self._lookup(index, _name_candidates(part.text, kinds, hit_lines), matched, spans)
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
        attributes: dict[str, int | str] = {"index": index.name, "records": len(counted), "columns": combo}
        for minimum in range(2, len(index.columns) + 1):
            attributes[f"records_min_columns_{minimum}"] = sum(
                1 for c in counted.values() if len(c) >= minimum
            )
        strongest = max(len(c) for c in counted.values())
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


def _strong_candidates(text: str, kinds: frozenset[str], widths: tuple[int, int]) -> Iterator[_Candidate]:
    low, high = widths
    if "email" in kinds and "@" in text:
        yield from _emails(text)
    number_kinds = [k for k in ("phone", "number") if k in kinds]
    if number_kinds:
        for match in _number_pattern(low, high).finditer(text):
            start, end = match.span()
            if start and (text[start - 1].isalnum() or text[start - 1] == "."):
                continue
            if end < len(text) and text[end].isalnum():
                continue
            value = match.group()
            if not low <= len(value) - value.count(" ") - value.count("-") <= high + 6:
                continue
            if start and text[start - 1] in "+(":
                start -= 1
                value = text[start] + value
            line = _line_start(text, start)
            for kind in number_kinds:
                yield _Candidate(kind, value, start, end, line)


def _emails(text: str) -> Iterator[_Candidate]:
    """Addresses around each '@': a substring search, then two short anchored matches,
    instead of a character-class scan of the whole text."""
    at = text.find("@")
    while at >= 0:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if local is not None and domain is not None:
            start, end = local.start(), domain.end()
            yield _Candidate("email", text[start:end], start, end, _line_start(text, start))
        at = text.find("@", at + 1)


def _name_candidates(text: str, kinds: frozenset[str], lines: set[int]) -> Iterator[_Candidate]:
    name_kinds = [k for k in ("name", "text") if k in kinds]
    for begin in sorted(lines) if name_kinds else ():
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        for match in _NAME_RUN.finditer(text, begin, end):
            for phrase, start, stop in _sub_phrases(match.group(), match.start()):
                for kind in name_kinds:
                    yield _Candidate(kind, phrase, start, stop, begin)


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
                    yield _Candidate("email", cell, start, position, start)
                continue
            digits = sum(ch.isdigit() for ch in cell)
            if digits >= 4 and digits * 2 >= len(cell):
                for kind in ("phone", "number"):
                    if kind in kinds:
                        yield _Candidate(kind, cell, start, position, start)
                continue
            for kind in ("name", "text"):
                if kind in kinds:
                    yield _Candidate(kind, cell, start, position, start)
