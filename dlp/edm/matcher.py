"""Finding our own customers' records in a part: candidates -> keyed hashes -> records.

The matcher runs no scan of its own over prose: `Engine.detect(part, values)` hands it
what the engine already found (the raw value of every kept finding, every digit run it
scanned), and the matcher keeps the e-mail addresses and the digit runs whose length fits
the index. Weak values (names, other text) are tried only where a strong one matched:
capitalised word runs on the lines holding a matched e-mail, phone or number, or in a
table the cells of the rows holding one. Each candidate is normalised and hashed
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

from dlp.detect import DIGIT_RUN, Candidate, RunCounts
from dlp.edm.index import SUFFIX, EdmIndex
from dlp.edm.normalise import STRONG_KINDS, keyed_hash, normalise, phone_digit_counts, phone_from_digits
from dlp.model import Confidence, Finding, Part

__all__ = ["EMAIL_DETECTOR", "EdmMatcher", "detector_id"]

EMAIL_DETECTOR = "email-address"
"""The engine detector whose values are e-mail candidates."""

_NAME_RUN = regex.compile(r"\b\p{Lu}[\p{L}'-]{0,40}(?:[ \t]+\p{Lu}[\p{L}'-]{0,40}){0,3}\b")
_MAX_NAME_WORDS = 4
_DIGIT_KINDS = ("phone", "number")
_NAME_KINDS = ("name", "text")
# An over-long run ("Ref 88412 415 555 0100") is also tried as groups of up to this many of
# its space-separated tokens.
_MAX_GROUP_TOKENS = 4
_MAX_RUN_TOKENS = 32
_RUN_SEPARATORS = b" -./()"
_NO_DIGITS = str.maketrans("", "", "0123456789")


def detector_id(index_name: str) -> str:
    """The finding's detector id for an index: `edm:<name>`."""
    return f"edm:{index_name}"


# (kind, normalised value, start, end): what the matcher hashes and looks up.
_Candidate = tuple[str, str, int, int]


class EdmMatcher:
    """Every loaded index, matched against each part."""

    def __init__(self, indexes: list[EdmIndex], secret: bytes, hash_key: bytes) -> None:
        self.indexes = indexes
        self._rules = [(index, _Digits.of(index)) for index in indexes]
        self._secret = secret
        self._hash_key = hash_key
        self.run_counts: RunCounts = (
            frozenset().union(*(rules.counts for _, rules in self._rules)),
            max((rules.longest for _, rules in self._rules), default=0),
        )
        """The digit runs worth handing over (`Engine.detect`'s `run_counts`): a count that
        can be one of an index's phones or numbers, or more digits than the longest with a
        space (its token groups are tried); any other run is never looked up."""

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
        if not self._rules or not values:
            return []
        findings = []
        for index, rules in self._rules:
            finding = self._match(index, rules, part, values)
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
        """Hash the (normalised) candidates, look them up in one search, record what
        matched; return the candidates that matched (where weak values are worth trying)."""
        secret = self._secret
        by_hash: dict[int, _Candidate] = {}
        for candidate in candidates:
            by_hash.setdefault(keyed_hash(secret, candidate[0], candidate[1]), candidate)
        if not by_hash:
            return []
        hit_hashes = set()
        for value_hash, record, column in index.lookup(list(by_hash)):
            matched.setdefault(record, set()).add(column)
            hit_hashes.add(value_hash)
        hits = [by_hash[value_hash] for value_hash in hit_hashes]
        spans.extend((c[2], c[3]) for c in hits)
        return hits

    def _match(
        self, index: EdmIndex, rules: _Digits, part: Part, values: Sequence[Candidate]
    ) -> Finding | None:
        matched: dict[int, set[int]] = {}
        spans: list[tuple[int, int]] = []
        text = part.text
        strong = _strong_candidates(text, values, index, rules)
        hits = self._lookup(index, strong, matched, spans)
        if hits:
            lines = {_line_start(text, c[2]) for c in hits}
            if part.table is not None:
                weak = _cell_candidates(text, part.table.delimiter, index, lines)
            else:
                weak = _name_candidates(text, index, lines)
            self._lookup(index, weak, matched, spans)
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


@dataclass(frozen=True)
class _Digits:
    """Which digit runs can be one of an index's phones or numbers, decided once per index:
    the digit counts a run may have (without and with a '+' before it) to be tried as a
    phone, the counts of its numbers, all of these, and their span (which over-long runs'
    token groups must fit)."""

    phone_plain: frozenset[int]
    phone_plus: frozenset[int]
    number: tuple[int, int]
    counts: frozenset[int]
    shortest: int
    longest: int

    @classmethod
    def of(cls, index: EdmIndex) -> _Digits:
        """The rules for one index (no phone or number column: no run is tried)."""
        none = (0, 0)
        phone = index.widths.get("phone", none) if "phone" in index.kinds else none
        number = index.widths.get("number", none) if "number" in index.kinds else none
        plain, plus = phone_digit_counts(index.region, *phone) if phone[1] else (frozenset(), frozenset())
        counts = plain | plus | frozenset(range(number[0], number[1] + 1) if number[1] else ())
        return cls(plain, plus, number, counts, min(counts, default=0), max(counts, default=0))


def _strong_candidates(
    text: str, values: Sequence[Candidate], index: EdmIndex, rules: _Digits
) -> list[_Candidate]:
    """E-mail findings and the digit runs that could be an indexed phone or number, normalised."""
    out: list[_Candidate] = []
    want_email = "email" in index.kinds
    shortest, longest, counts, region = rules.shortest, rules.longest, rules.counts, index.region
    for source, value, start, end in values:
        if source == DIGIT_RUN:
            if not longest or len(value) < shortest:
                continue
            digits = value if value.isdigit() else _digits(value)
            if len(digits) in counts:
                _add_digits(out, text, digits, start, end, rules, region)
            elif len(digits) > longest and " " in value:
                for first, stop in _groups(value, start, counts, longest):
                    digits = _digits(text[first:stop])
                    _add_digits(out, text, digits, first, stop, rules, region)
        elif source == EMAIL_DETECTOR and want_email:
            email = normalise("email", value)
            if email is not None:
                out.append(("email", email, start, end))
    return out


def _digits(run: str) -> str:
    """The digits of an (ASCII) digit run: bytes.translate deletes its separators about ten
    times faster than str.translate."""
    return run.encode("ascii", "ignore").translate(None, _RUN_SEPARATORS).decode("ascii")


def _add_digits(
    out: list[_Candidate], text: str, digits: str, start: int, end: int, rules: _Digits, region: str
) -> None:
    """A digit run as an indexed number (its digits) and as a phone (E.164, a "+" written
    before it kept), each only when its digit count can match the index."""
    count = len(digits)
    if rules.number[0] <= count <= rules.number[1]:
        out.append(("number", digits, start, end))
    plus = start > 0 and text[start - 1] == "+"
    if count in (rules.phone_plus if plus else rules.phone_plain):
        e164 = phone_from_digits(digits, plus, region)
        if e164 is not None:
            out.append(("phone", e164, start - plus, end))


def _groups(run: str, start: int, counts: frozenset[int], high: int) -> Iterator[tuple[int, int]]:
    """Spans of up to `_MAX_GROUP_TOKENS` consecutive space-separated tokens of an over-long
    run whose digit count is one of `counts` (none above `high`)."""
    tokens: list[tuple[int, str]] = []
    position = start
    for token in run.split(" ")[:_MAX_RUN_TOKENS]:
        if token:
            tokens.append((position, token))
        position += len(token) + 1
    for i, (first, _) in enumerate(tokens):
        digits = 0
        for last, token in tokens[i : i + _MAX_GROUP_TOKENS]:
            digits += len(token) if token.isdigit() else len(_digits(token))
            if digits > high:
                break
            if digits in counts:
                yield first, last + len(token)


def _name_candidates(text: str, index: EdmIndex, lines: set[int]) -> Iterator[_Candidate]:
    """Capitalised word runs (and their sub-phrases) on the given lines, normalised."""
    name_kinds = [k for k in _NAME_KINDS if k in index.kinds]
    for begin in sorted(lines) if name_kinds else ():
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        for match in _NAME_RUN.finditer(text, begin, end):
            for phrase, start, stop in _sub_phrases(match.group(), match.start()):
                for kind in name_kinds:
                    value = normalise(kind, phrase)
                    if value is not None:
                        yield (kind, value, start, stop)


def _sub_phrases(run: str, offset: int) -> Iterator[tuple[str, int, int]]:
    words = [(m.group(), m.start()) for m in regex.finditer(r"\S+", run)]
    for i in range(len(words)):
        for j in range(i, min(len(words), i + _MAX_NAME_WORDS)):
            start = words[i][1]
            stop = words[j][1] + len(words[j][0])
            yield run[start:stop], offset + start, offset + stop


def _cell_candidates(text: str, delimiter: str, index: EdmIndex, lines: set[int]) -> Iterator[_Candidate]:
    """The weak cells (neither an address nor mostly digits) of the given table rows, normalised."""
    weak_kinds = [k for k in _NAME_KINDS if k in index.kinds]
    for begin in sorted(lines) if weak_kinds else ():
        end = text.find("\n", begin)
        end = len(text) if end < 0 else end
        for cell in next(csv.reader([text[begin:end]], delimiter=delimiter), []):
            digits = len(cell) - len(cell.translate(_NO_DIGITS))
            if "@" in cell or digits * 2 >= len(cell.strip()):
                continue
            for kind in weak_kinds:
                value = normalise(kind, cell)
                if value is not None:
                    yield (kind, value, begin, end)
