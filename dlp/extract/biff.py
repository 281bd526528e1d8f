"""Excel 97-2003 workbooks (.xls): the cell values of the `Workbook` stream's BIFF
records, read with xlrd.

Every worksheet, hidden ones too, becomes its non-empty rows of cell texts: numbers
without exponent, cached formula results, TRUE/FALSE for booleans; error cells and
blanks are empty. A FILEPASS record (password protection) raises `BiffEncrypted`;
damaged globals (sheet list, shared strings) raise xlrd's own exception (the caller
flags the workbook corrupt); a damaged sheet comes without rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import xlrd

__all__ = ["BiffEncrypted", "Sheet", "sheets"]

Sheet = tuple[str, list[list[str]] | None]
_ENCRYPTED = "Workbook is encrypted"


class BiffEncrypted(Exception):
    """The workbook is password-protected (FILEPASS)."""


class _Discard(io.TextIOBase):
    """A log stream that drops xlrd's warnings about damaged records."""

    def write(self, text: str) -> int:
        return len(text)


def sheets(data: bytes, check: Callable[[], None]) -> Iterator[Sheet]:
    """Every worksheet of a BIFF workbook stream as (name, rows of cell texts), or
    (name, None) for a sheet whose records are damaged, so one bad sheet does not hide
    the others; `check` is called between sheets and rows (the caller's time limit)."""
    try:
        book = xlrd.open_workbook(
            file_contents=data, on_demand=True, formatting_info=False, ragged_rows=True, logfile=_Discard()
        )
    except xlrd.XLRDError as error:
        if str(error) == _ENCRYPTED:
            raise BiffEncrypted() from error
        raise
    with book:
        for index in range(book.nsheets):
            check()
            name = book.sheet_names()[index]
            try:
                sheet = book.sheet_by_index(index)
            except Exception:
                yield name, None
                continue
            rows = _rows(sheet, check)
            book.unload_sheet(index)
            yield name, rows


def _rows(sheet: xlrd.sheet.Sheet, check: Callable[[], None]) -> list[list[str]]:
    """The sheet's non-empty rows, trailing empty cells dropped."""
    rows: list[list[str]] = []
    for row in range(sheet.nrows):
        check()
        cells = zip(sheet.row_types(row), sheet.row_values(row), strict=True)
        line = [_text(kind, value) for kind, value in cells]
        while line and not line[-1]:
            line.pop()
        if line:
            rows.append(line)
    return rows


def _text(kind: int, value: object) -> str:
    if kind == xlrd.XL_CELL_TEXT:
        return str(value)
    if kind in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE) and isinstance(value, int | float):
        return _number(float(value))
    if kind == xlrd.XL_CELL_BOOLEAN:
        return "TRUE" if value else "FALSE"
    return ""


def _number(value: float) -> str:
    """Integral numbers without a decimal point or exponent (a card typed as a number)."""
    if value == value and abs(value) < 1e22 and value == int(value):
        return str(int(value))
    return repr(value)
