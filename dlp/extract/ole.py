"""Legacy Office files: OLE compound files (olefile) holding a Word 97-2003 document,
an Excel 97-2003 workbook (see `dlp.extract.biff`; every sheet, hidden ones too, as
a TSV table part at `book.xls#Sheet`, the first row being the header) or a PowerPoint
97-2003 presentation (see `dlp.extract.ppt`; the text of slides, notes, masters and
comments at the document's location).

Word's binary format ([MS-DOC]) keeps the text in the `WordDocument` stream as pieces
listed by the piece table (the CLX in the `0Table` or `1Table` stream): each piece is
either 8-bit (cp1252) or UTF-16LE. We read every piece in order (main text, then
footnotes, headers, comments and text boxes, which Word stores after it) and turn
Word's control characters into plain text. A document with the `fEncrypted` bit, or
an OOXML file wrapped in an OLE container (`EncryptedPackage`), is flagged
`encrypted`, as is a workbook with a FILEPASS record (a damaged sheet is a `corrupt`
part at its own location, the other sheets are still read) and a presentation with an
`EncryptedSummary` stream, an encrypted `Current User` or a CryptSession10Container
record (a damaged one is `corrupt` on the text read before the damage). Outlook items
(.msg) are read by `dlp.extract.msg`; other compound files and pre-97 Word and Excel
files are flagged `unsupported`.
Streams larger than the per-member limit are not read, and the pieces together never
yield more characters than the `WordDocument` stream has bytes (each character is stored
once): a piece table whose pieces overlap, which could otherwise repeat the stream
without end, stops there with `corrupt` on what was read.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import replace

import olefile

from dlp.extract import biff, msg, ppt
from dlp.extract.members import location_segment
from dlp.extract.node import CORRUPT, ENCRYPTED, LIMIT_SIZE, UNSUPPORTED, Context, LimitReached, Node
from dlp.extract.text import text_parts
from dlp.model import Part, Table

__all__ = ["read_ole"]

WORD_MIME = "application/msword"
EXCEL_MIME = "application/vnd.ms-excel"
POWERPOINT_MIME = "application/vnd.ms-powerpoint"
_PRESENTATION = "PowerPoint Document"
_CELL_BREAKS = re.compile(r"[\t\r\n]+")
_WORD_IDENT = 0xA5EC
_WORD_97 = 0xC1
_F_ENCRYPTED = 0x0100
_F_WHICH_TABLE = 0x0200
_CLX_INDEX = 33
_CONTROLS = {
    **{code: None for code in range(32) if code not in (9, 10, 12, 13)},
    0x07: "\t",
    0x0B: "\n",
    0x0C: "\n",
    0x0D: "\n",
    0x1E: "-",
}


def read_ole(node: Node, ctx: Context) -> Iterator[Part]:
    """A legacy Word document's text at the document's location, a legacy workbook's
    sheets, or an Outlook item's parts; other compound files get one flagged part."""
    stream = node.blob.stream
    stream.seek(0)
    try:
        ole = olefile.OleFileIO(stream)
    except Exception:
        yield node.part("", (CORRUPT,))
        return
    with ole:
        if ole.exists("EncryptedPackage"):
            yield node.part("", (ENCRYPTED,))
            return
        if msg.is_msg(ole):
            yield from msg.read_msg(node, ctx, ole)
            return
        if ole.exists("Workbook"):
            yield from _workbook(node, ctx, ole)
            return
        if ole.exists(_PRESENTATION):
            yield from _presentation(node, ctx, ole)
            return
        if not ole.exists("WordDocument"):
            yield node.part("", (UNSUPPORTED,))
            return
        pieces: list[str] = []
        try:
            pieces.extend(_word_text(ole, ctx))
        except _Stop as stop:
            if not pieces:
                yield node.part("", (stop.flag,), mime=WORD_MIME)
                return
            node = replace(node, flags=(*node.flags, stop.flag))
        except LimitReached:
            raise
        except Exception:
            yield node.part("", (CORRUPT,), mime=WORD_MIME)
            return
    yield from text_parts(node, pieces, mime=WORD_MIME)


def _workbook(node: Node, ctx: Context, ole: olefile.OleFileIO) -> Iterator[Part]:
    try:
        books = list(biff.sheets(_stream(ole, "Workbook", ctx), ctx.check_time))
    except _Stop as stop:
        yield node.part("", (stop.flag,), mime=EXCEL_MIME)
        return
    except biff.BiffEncrypted:
        yield node.part("", (ENCRYPTED,), mime=EXCEL_MIME)
        return
    except LimitReached:
        raise
    except Exception:
        yield node.part("", (CORRUPT,), mime=EXCEL_MIME)
        return
    yield node.part("", mime=EXCEL_MIME)
    for name, rows in books:
        location = f"{node.location}#{location_segment(name)}"
        if rows is None:
            yield node.part("", (CORRUPT,), location=location, mime=EXCEL_MIME)
            continue
        table = Table("\t", tuple(rows[0]) if rows else ())
        lines = ("\t".join(_CELL_BREAKS.sub(" ", cell) for cell in row) + "\n" for row in rows)
        for part in text_parts(node, lines, table=table, mime=EXCEL_MIME):
            yield replace(part, location=location)


def _presentation(node: Node, ctx: Context, ole: olefile.OleFileIO) -> Iterator[Part]:
    lines: list[str] = []
    try:
        if ole.exists("EncryptedSummary") or ppt.is_encrypted_user(_current_user(ole, ctx)):
            raise _Stop(ENCRYPTED)
        lines.extend(ppt.texts(_stream(ole, _PRESENTATION, ctx), ctx.check_time))
    except _Stop as stop:
        yield node.part("", (stop.flag,), mime=POWERPOINT_MIME)
        return
    except ppt.PptEncrypted:
        yield node.part("", (ENCRYPTED,), mime=POWERPOINT_MIME)
        return
    except ppt.PptDamaged:
        if not lines:
            yield node.part("", (CORRUPT,), mime=POWERPOINT_MIME)
            return
        node = replace(node, flags=(*node.flags, CORRUPT))
    except LimitReached:
        raise
    except Exception:
        yield node.part("", (CORRUPT,), mime=POWERPOINT_MIME)
        return
    yield from text_parts(node, lines, mime=POWERPOINT_MIME)


def _current_user(ole: olefile.OleFileIO, ctx: Context) -> bytes:
    return _stream(ole, "Current User", ctx) if ole.exists("Current User") else b""


class _Stop(Exception):
    """Reading stops with `flag` on the document's part."""

    def __init__(self, flag: str) -> None:
        super().__init__(flag)
        self.flag = flag


def _stream(ole: olefile.OleFileIO, name: str, ctx: Context) -> bytes:
    size: int = ole.get_size(name)
    if size > ctx.limits.max_member_bytes:
        raise _Stop(LIMIT_SIZE)
    ctx.check_time()
    with ole.openstream(name) as handle:
        data: bytes = handle.read()
    return data


def _word_text(ole: olefile.OleFileIO, ctx: Context) -> Iterator[str]:
    """The text of every piece of the document, control characters made plain."""
    document = _stream(ole, "WordDocument", ctx)
    if len(document) < 34:
        raise _Stop(CORRUPT)  # FIB cut short
    ident, version = struct.unpack_from("<HH", document, 0)
    flags = struct.unpack_from("<H", document, 0x0A)[0]
    if ident != _WORD_IDENT:
        raise _Stop(CORRUPT)  # not a Word FIB
    if flags & _F_ENCRYPTED:
        raise _Stop(ENCRYPTED)
    if version < _WORD_97:
        raise _Stop(UNSUPPORTED)
    position = 32
    (words,) = struct.unpack_from("<H", document, position)
    position += 2 + 2 * words
    (longs,) = struct.unpack_from("<H", document, position)
    position += 2 + 4 * longs
    (pairs,) = struct.unpack_from("<H", document, position)
    if pairs <= _CLX_INDEX:
        raise _Stop(CORRUPT)  # FIB has no CLX
    fc_clx, lcb_clx = struct.unpack_from("<LL", document, position + 2 + 8 * _CLX_INDEX)
    table = _stream(ole, "1Table" if flags & _F_WHICH_TABLE else "0Table", ctx)
    clx = table[fc_clx : fc_clx + lcb_clx]
    left = len(document)
    for start, end, fc in _pieces(clx):
        ctx.check_time()
        count = min(end - start, left)
        left -= count
        if fc & 0x40000000:
            offset = (fc & 0x3FFFFFFF) // 2
            raw = document[offset : offset + count]
            text = raw.decode("cp1252", "replace")
        else:
            raw = document[fc : fc + 2 * count]
            text = raw.decode("utf-16-le", "replace")
        yield text.translate(_CONTROLS)
        if count < end - start:
            raise _Stop(CORRUPT)  # the pieces claim more characters than the stream has bytes


def _pieces(clx: bytes) -> Iterator[tuple[int, int, int]]:
    """(first character, end character, file position) of each piece in a CLX: any
    property runs (0x01 blocks) are skipped, then the piece table (0x02 block)."""
    position = 0
    while position < len(clx) and clx[position] == 0x01:
        (size,) = struct.unpack_from("<H", clx, position + 1)
        position += 3 + size
    if position + 5 > len(clx) or clx[position] != 0x02:
        raise _Stop(CORRUPT)  # no piece table
    (size,) = struct.unpack_from("<L", clx, position + 1)
    plc = clx[position + 5 : position + 5 + size]
    count = (len(plc) - 4) // 12
    if count <= 0:
        return
    characters = struct.unpack_from(f"<{count + 1}L", plc, 0)
    for index in range(count):
        (fc,) = struct.unpack_from("<L", plc, 4 * (count + 1) + 8 * index + 2)
        start, end = characters[index], characters[index + 1]
        if end > start:
            yield start, end, fc
