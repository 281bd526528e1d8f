"""Tabular text: which column a value sits in, and the detectors that judge a table as a whole.

A column header is context for every value in its column, however far below the header
the row is, so `column_of` maps an offset to its column index. The aggregate detectors
look at the whole table: `customer-list` counts the rows that carry personal data and
`crm-export-header` recognises the header rows (and report footers) that CRM systems
write into their exports. Both are named here and configured by their definition's
`params`; `AGGREGATES` maps each name to its parameter check and its function.
"""

from __future__ import annotations

import bisect
import csv
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex

from dlp.model import Confidence, Table

__all__ = [
    "AGGREGATES",
    "Aggregate",
    "AggregateResult",
    "column_of",
    "normalise_header",
    "record_starts",
]

_QUOTES = "\"' \t\ufeff"


def normalise_header(cell: str) -> str:
    """A header cell as compared: quotes and blanks stripped, lower case."""
    return cell.strip(_QUOTES).lower()


def record_starts(text: str, delimiter: str) -> list[int]:
    """Offsets where the records of delimited text start, when a quoted cell spans a line break
    (a Salesforce MailingStreet with two lines); empty when every record is one line.

    Records are read as the csv module reads them: a quote opens a quoted cell only at the
    start of a cell, so a stray `12"` inside a cell does not join the lines after it. Without
    this, the line after a multi-line cell reads as a record of its own, so rows are counted
    twice and its values get the wrong column header. Text the csv module refuses (a cell
    over its size limit) is read line by line, as before.
    """
    if '"' not in text:
        return []
    lines = text.split("\n")
    line_starts = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    reader = csv.reader((line + "\n" for line in lines), delimiter=delimiter)
    starts: list[int] = []
    consumed = 0
    spanned = False
    try:
        for _ in reader:
            starts.append(line_starts[consumed])
            spanned = spanned or reader.line_num - consumed > 1
            consumed = reader.line_num
    except csv.Error:
        return []
    return starts if spanned else []


def column_of(text: str, position: int, table: Table, records: Sequence[int] = ()) -> int:
    """The column index of the cell holding `position` (quoted delimiters respected); `records`
    are the `record_starts` of the text, so a cell after a multi-line one is placed right."""
    line_start = text.rfind("\n", 0, position) + 1
    if records:
        line_start = records[bisect.bisect_right(records, position) - 1]
    prefix = text[line_start:position]
    if '"' not in prefix:
        return prefix.count(table.delimiter)
    try:
        row = next(csv.reader([prefix], delimiter=table.delimiter))
    except (csv.Error, StopIteration):
        return prefix.count(table.delimiter)
    return max(len(row) - 1, 0)


@dataclass(frozen=True)
class AggregateResult:
    """What an aggregate found: confidence, rows or records counted, attributes, explanation,
    and a stable text that identifies what was found (hashed, never shown)."""

    confidence: Confidence
    count: int
    attributes: Mapping[str, int | str]
    explanation: str
    fingerprint: str
    start: int
    end: int
    preview: str


@dataclass(frozen=True)
class Aggregate:
    """A named table-level detector: `check(params)` returns an error or None, `prepare(params)`
    turns checked parameters into what `run` needs (once, when the engine is built)."""

    check: Callable[[Mapping[str, Any]], str | None]
    prepare: Callable[[Mapping[str, Any]], Any]
    run: Callable[[str, Table | None, Sequence[tuple[str, int]], Any, int], AggregateResult | None]


# ---------------------------------------------------------------- customer-list

_CUSTOMER_KEYS = {"row_detectors", "name_columns", "thresholds"}


def _check_customer_list(params: Mapping[str, Any]) -> str | None:
    unknown = set(params) - _CUSTOMER_KEYS
    if unknown:
        return f"unknown parameter(s): {', '.join(sorted(unknown))}"
    for key in ("row_detectors", "name_columns"):
        value = params.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"'{key}' must be a list of strings"
    thresholds = params.get("thresholds")
    if not isinstance(thresholds, dict) or set(thresholds) != {"low", "medium", "high"}:
        return "'thresholds' must map low, medium and high to row counts"
    if not all(isinstance(v, int) and v > 0 for v in thresholds.values()):
        return "'thresholds' values must be positive integers"
    if not thresholds["low"] <= thresholds["medium"] <= thresholds["high"]:
        return "'thresholds' must grow from low to high"
    return None


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts


@dataclass(frozen=True)
class _CustomerList:
    row_detectors: frozenset[str]
    names: frozenset[str]
    thresholds: Mapping[str, int]


def _prepare_customer_list(params: Mapping[str, Any]) -> _CustomerList:
    return _CustomerList(
        frozenset(params["row_detectors"]),
        frozenset(normalise_header(n) for n in params["name_columns"]),
        dict(params["thresholds"]),
    )


def _customer_list(
    text: str,
    table: Table | None,
    findings: Sequence[tuple[str, int]],
    params: _CustomerList,
    offset: int,
) -> AggregateResult | None:
    """Rows of a table that carry personal data: a row-detector finding (e-mail, phone ...) or
    a non-empty cell in a name column. The header row (first chunk only) is not counted; a
    record whose quoted cell spans lines counts once."""
    if table is None:
        return None
    starts = record_starts(text, table.delimiter) or _line_starts(text)
    header_line = 0 if offset == 0 else -1
    rows = {bisect.bisect_right(starts, pos) - 1 for det, pos in findings if det in params.row_detectors}
    name_cols = [i for i, cell in enumerate(table.header) if normalise_header(cell) in params.names]
    if name_cols:
        for index, row in enumerate(csv.reader(text.split("\n"), delimiter=table.delimiter)):
            if index not in rows and any(col < len(row) and row[col].strip() for col in name_cols):
                rows.add(index)
    rows.discard(header_line)
    count = len(rows)
    thresholds = params.thresholds
    if count < thresholds["low"]:
        return None
    level = Confidence.LOW
    if count >= thresholds["high"]:
        level = Confidence.HIGH
    elif count >= thresholds["medium"]:
        level = Confidence.MEDIUM
    header = [normalise_header(c) for c in table.header]
    return AggregateResult(
        confidence=level,
        count=count,
        attributes={"rows": count},
        explanation=f"aggregate customer-list: {count} rows with personal data"
        + (f"; name columns {', '.join(header[c] for c in name_cols)}" if name_cols else ""),
        fingerprint="customer-list:" + "\x1f".join(header),
        start=0,
        end=len(text),
        preview=f"{count} rows",
    )


# ---------------------------------------------------------------- crm-export-header

_SYSTEM_KEYS = {"headers", "min", "prefix", "suffix", "shape"}
_CRM_KEYS = {"systems", "footers"}


def _check_crm(params: Mapping[str, Any]) -> str | None:
    unknown = set(params) - _CRM_KEYS
    if unknown:
        return f"unknown parameter(s): {', '.join(sorted(unknown))}"
    systems = params.get("systems")
    if not isinstance(systems, dict) or not systems:
        return "'systems' must map system names to signatures"
    for name, sig in systems.items():
        if not isinstance(sig, dict) or set(sig) - _SYSTEM_KEYS:
            return f"system '{name}': keys must be among {', '.join(sorted(_SYSTEM_KEYS))}"
        if not isinstance(sig.get("min"), int):
            return f"system '{name}': 'min' must be an integer"
        if "shape" in sig:
            try:
                regex.compile(sig["shape"])
            except regex.error as exc:
                return f"system '{name}': bad shape regex: {exc}"
    footers = params.get("footers", {})
    if not isinstance(footers, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in footers.values()
    ):
        return "'footers' must map system names to lists of strings"
    return None


@dataclass(frozen=True)
class _Signature:
    system: str
    names: frozenset[str]
    prefix: str
    suffix: str
    shape: regex.Pattern[str] | None
    minimum: int

    def score(self, header: Sequence[str]) -> int:
        """How many header cells fit this system's signature."""
        score = 0
        for cell in header:
            if (
                cell in self.names
                or (self.prefix and cell.startswith(self.prefix))
                or (self.suffix and cell.endswith(self.suffix))
                or (self.shape is not None and self.shape.fullmatch(cell))
            ):
                score += 1
        return score


_BEST_CACHE = 256


@dataclass(frozen=True)
class _CrmExport:
    signatures: tuple[_Signature, ...]
    footers: tuple[tuple[str, tuple[str, ...]], ...]
    # a table's header cells -> the best signature's (score, system) or None: every chunk of
    # a large table, and every export from the same CRM, carries the same header. Only
    # declared headers are kept, never a text's first line (which may hold values).
    known: dict[tuple[str, ...], tuple[int, str] | None] = field(default_factory=dict, compare=False)

    def best_system(self, header: Sequence[str]) -> tuple[int, str] | None:
        """The signature scoring highest on the header cells (at least its minimum), or None."""
        best: tuple[int, str] | None = None
        for sig in self.signatures:
            score = sig.score(header)
            if score >= sig.minimum and (best is None or score > best[0]):
                best = (score, sig.system)
        return best

    def best_for_table(self, header: tuple[str, ...]) -> tuple[int, str] | None:
        """`best_system` of a declared table header, remembered."""
        if header in self.known:
            return self.known[header]
        best = self.best_system(header)
        if len(self.known) >= _BEST_CACHE:
            self.known.clear()
        self.known[header] = best
        return best


def _prepare_crm(params: Mapping[str, Any]) -> _CrmExport:
    signatures = tuple(
        _Signature(
            system=name,
            names=frozenset(normalise_header(h) for h in sig.get("headers", ())),
            prefix=str(sig.get("prefix", "")).lower(),
            suffix=str(sig.get("suffix", "")).lower(),
            shape=regex.compile(sig["shape"]) if "shape" in sig else None,
            minimum=sig["min"],
        )
        for name, sig in params["systems"].items()
    )
    footers = tuple(
        (name, tuple(line.lower() for line in lines)) for name, lines in params.get("footers", {}).items()
    )
    return _CrmExport(signatures, footers)


_MAX_HEADER_LINE = 2048
_MAX_HEADER_CELL = 64


def _first_line_header(text: str) -> list[str] | None:
    """The first line as header cells when it looks like one: three or more short cells."""
    end = text.find("\n", 0, _MAX_HEADER_LINE)
    line = text[: end if end >= 0 else _MAX_HEADER_LINE]
    for delimiter in (",", "\t", ";", "|"):
        if line.count(delimiter) >= 2:
            try:
                cells = next(csv.reader([line], delimiter=delimiter))
            except (csv.Error, StopIteration):
                return None
            if all(len(cell) <= _MAX_HEADER_CELL for cell in cells):
                return [normalise_header(c) for c in cells]
            return None
    return None


def _crm_export(
    text: str,
    table: Table | None,
    findings: Sequence[tuple[str, int]],
    params: _CrmExport,
    offset: int,
) -> AggregateResult | None:
    """The CRM system whose export header (or report footer) this text carries."""
    del findings
    header: Sequence[str] | None = None
    best: tuple[int, str] | None = None
    if table and table.header:
        header = tuple(normalise_header(c) for c in table.header)
        best = params.best_for_table(header)
    elif offset == 0:
        header = _first_line_header(text)
        best = params.best_system(header) if header else None
    if best is not None:
        system = best[1]
        return AggregateResult(
            confidence=Confidence.HIGH,
            count=1,
            attributes={"system": system},
            explanation=f"aggregate crm-export-header: {best[0]} {system} header columns",
            fingerprint=f"crm-export-header:{system}:" + "\x1f".join(header or ()),
            start=0,
            end=min(len(text), max(text.find("\n"), 0) or len(text)),
            preview=f"{system} export header",
        )
    lowered_tail = text[-2048:].lower()
    for name, lines in params.footers:
        seen = [line for line in lines if line in lowered_tail]
        if len(seen) >= 2:
            start = len(text) - len(lowered_tail) + lowered_tail.find(seen[0])
            return AggregateResult(
                confidence=Confidence.MEDIUM,
                count=1,
                attributes={"system": name},
                explanation=f"aggregate crm-export-header: {len(seen)} {name} report footer lines",
                fingerprint=f"crm-export-footer:{name}",
                start=start,
                end=len(text),
                preview=f"{name} report footer",
            )
    return None


AGGREGATES: dict[str, Aggregate] = {
    "customer-list": Aggregate(_check_customer_list, _prepare_customer_list, _customer_list),
    "crm-export-header": Aggregate(_check_crm, _prepare_crm, _crm_export),
}
