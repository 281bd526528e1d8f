"""Excel 97-2003 workbooks (.xls): the BIFF8 records of the `Workbook` stream
([MS-XLS]), read for their cell values only.

The globals substream gives the sheets (BOUNDSHEET: name and where the sheet's records
start) and the shared strings (SST, whose strings may be split across CONTINUE
records, each split restating whether the characters are 8-bit or UTF-16). Each sheet's
cells come from LABELSST, LABEL, RSTRING, NUMBER, RK, MULRK and FORMULA (with its cached
result, a following STRING record for text). Every sheet, hidden ones too, becomes
rows of cells; a FILEPASS record means the workbook is encrypted.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

__all__ = ["BiffEncrypted", "BiffError", "Sheet", "sheets"]

_BOF, _EOF, _CONTINUE, _FILEPASS = 0x0809, 0x000A, 0x003C, 0x002F
_BOUNDSHEET, _SST = 0x0085, 0x00FC
_LABELSST, _LABEL, _RSTRING, _NUMBER, _RK, _MULRK, _FORMULA, _STRING = (
    0x00FD,
    0x0204,
    0x00D6,
    0x0203,
    0x027E,
    0x00BD,
    0x0006,
    0x0207,
)
_BIFF8 = 0x0600
_MAX_COLUMNS = 16384

Sheet = tuple[str, list[list[str]]]


class BiffError(Exception):
    """The workbook stream is damaged or not BIFF8."""


class BiffEncrypted(Exception):
    """The workbook is password-protected (FILEPASS)."""


def _records(data: bytes, start: int = 0) -> Iterator[tuple[int, int, bytes]]:
    position = start
    while position + 4 <= len(data):
        kind, size = struct.unpack_from("<HH", data, position)
        body = data[position + 4 : position + 4 + size]
        yield position, kind, body
        position += 4 + size


def sheets(data: bytes, check: Callable[[], None]) -> Iterator[Sheet]:
    """Every sheet of a BIFF8 workbook stream as (name, rows of cell texts); `check` is
    called between sheets (the caller's time limit)."""
    records = _records(data)
    first = next(records, None)
    if first is None or first[1] != _BOF or len(first[2]) < 4:
        raise BiffError("no BOF")
    if struct.unpack_from("<H", first[2], 0)[0] != _BIFF8:
        raise BiffError("not BIFF8")
    bound: list[tuple[int, str]] = []
    strings: list[str] = []
    segments: list[bytes] | None = None
    for _, kind, body in records:
        if segments is not None and kind != _CONTINUE:
            strings = _shared_strings(segments)
            segments = None
        if kind == _FILEPASS:
            raise BiffEncrypted()
        if kind == _BOUNDSHEET and len(body) >= 8:
            (offset,) = struct.unpack_from("<L", body, 0)
            name, _ = _short_string(body, 6)
            bound.append((offset, name))
        elif kind == _SST:
            segments = [body[8:]]
        elif kind == _CONTINUE and segments is not None:
            segments.append(body)
        elif kind == _EOF:
            break
    if segments is not None:
        strings = _shared_strings(segments)
    for offset, name in bound:
        check()
        yield name, _sheet_rows(data, offset, strings)


def _sheet_rows(data: bytes, offset: int, strings: list[str]) -> list[list[str]]:
    cells: dict[int, dict[int, str]] = {}

    def put(row: int, column: int, text: str) -> None:
        if text and column < _MAX_COLUMNS:
            cells.setdefault(row, {})[column] = text

    records = _records(data, offset)
    first = next(records, None)
    if first is None or first[1] != _BOF:
        raise BiffError("sheet without BOF")
    pending: tuple[int, int] | None = None
    for _, kind, body in records:
        if kind == _EOF:
            break
        if kind == _STRING and pending is not None:
            put(*pending, _unicode_string(body, 0)[0])
            pending = None
            continue
        if len(body) < 6:
            continue
        row, column = struct.unpack_from("<HH", body, 0)
        if kind == _LABELSST and len(body) >= 10:
            (index,) = struct.unpack_from("<L", body, 6)
            put(row, column, strings[index] if index < len(strings) else "")
        elif kind in (_LABEL, _RSTRING):
            put(row, column, _unicode_string(body, 6)[0])
        elif kind == _NUMBER and len(body) >= 14:
            put(row, column, _number(struct.unpack_from("<d", body, 6)[0]))
        elif kind == _RK and len(body) >= 10:
            put(row, column, _number(_rk(struct.unpack_from("<L", body, 6)[0])))
        elif kind == _MULRK:
            for index in range((len(body) - 6) // 6):
                (value,) = struct.unpack_from("<L", body, 4 + 6 * index + 2)
                put(row, column + index, _number(_rk(value)))
        elif kind == _FORMULA and len(body) >= 14:
            result = body[6:14]
            if result[6:8] != b"\xff\xff":
                put(row, column, _number(struct.unpack_from("<d", result, 0)[0]))
            elif result[0] == 0:
                pending = (row, column)
            elif result[0] == 1:
                put(row, column, "TRUE" if result[2] else "FALSE")
    out: list[list[str]] = []
    for row in sorted(cells):
        values = cells[row]
        line = [""] * (max(values) + 1)
        for column, text in values.items():
            line[column] = text
        out.append(line)
    return out


def _rk(value: int) -> float:
    if value & 0x02:
        number: float = float(value >> 2 if not value & 0x80000000 else (value >> 2) - (1 << 30))
    else:
        number = struct.unpack("<d", struct.pack("<Q", (value & 0xFFFFFFFC) << 32))[0]
    return number / 100 if value & 0x01 else number


def _number(value: float) -> str:
    """Integral numbers without a decimal point or exponent (a card typed as a number)."""
    if value == value and abs(value) < 1e22 and value == int(value):
        return str(int(value))
    return repr(value)


def _short_string(body: bytes, position: int) -> tuple[str, int]:
    """A ShortXLUnicodeString (8-bit count) at `position`; the text and the end."""
    if position + 2 > len(body):
        return "", len(body)
    count, flags = body[position], body[position + 1]
    return _chars(body, position + 2, count, flags & 0x01)


def _unicode_string(body: bytes, position: int) -> tuple[str, int]:
    """An XLUnicodeString (16-bit count) at `position`; the text and the end."""
    if position + 3 > len(body):
        return "", len(body)
    (count,) = struct.unpack_from("<H", body, position)
    flags = body[position + 2]
    return _chars(body, position + 3, count, flags & 0x01)


def _chars(body: bytes, position: int, count: int, wide: int) -> tuple[str, int]:
    if wide:
        end = position + 2 * count
        return body[position:end].decode("utf-16-le", "replace"), end
    end = position + count
    return body[position:end].decode("latin-1"), end


def _shared_strings(segments: list[bytes]) -> list[str]:
    """The SST's strings, following them across CONTINUE segments."""
    reader = _Segments(segments)
    out: list[str] = []
    while not reader.done():
        header = reader.take(3)
        if len(header) < 3:
            break
        count, flags = struct.unpack_from("<HB", header, 0)
        runs = struct.unpack("<H", reader.take(2))[0] if flags & 0x08 else 0
        extra = struct.unpack("<L", reader.take(4))[0] if flags & 0x04 else 0
        out.append(reader.chars(count, flags & 0x01))
        reader.take(4 * runs + extra)
    return out


class _Segments:
    """A cursor over the SST record and its CONTINUE records."""

    def __init__(self, segments: list[bytes]) -> None:
        self.segments = segments
        self.index = 0
        self.position = 0

    def done(self) -> bool:
        while self.index < len(self.segments) and self.position >= len(self.segments[self.index]):
            self.index += 1
            self.position = 0
        return self.index >= len(self.segments)

    def take(self, size: int) -> bytes:
        out = bytearray()
        while size > 0 and not self.done():
            segment = self.segments[self.index]
            piece = segment[self.position : self.position + size]
            out += piece
            self.position += len(piece)
            size -= len(piece)
        return bytes(out)

    def chars(self, count: int, wide: int) -> str:
        """`count` characters; where a CONTINUE splits them, its first byte says
        whether the rest are 8-bit or UTF-16."""
        pieces: list[str] = []
        while count > 0 and not self.done():
            segment = self.segments[self.index]
            available = len(segment) - self.position
            width = 2 if wide else 1
            take = min(count, available // width)
            raw = segment[self.position : self.position + take * width]
            pieces.append(raw.decode("utf-16-le" if wide else "latin-1", "replace"))
            self.position += take * width
            count -= take
            if count > 0:
                self.index += 1
                self.position = 0
                if self.done():
                    break
                wide = self.segments[self.index][0] & 0x01
                self.position = 1
        return "".join(pieces)
