"""Word 97-2003 documents (.doc) are read through their piece table: the text, table
cells and cp1252 pieces come out as plain text; an encrypted one is `encrypted`, a
damaged one `corrupt`. The fixture was saved as .doc by LibreOffice 7.4 from a
python-docx document (no Python library writes .doc)."""

from __future__ import annotations

import struct
from pathlib import Path

import olefile

from dlp.extract import extract
from dlp.model import Item, Limits, Part
from tests.extract.samples import CARD

LETTER = (Path(__file__).parent / "fixtures" / "letter.doc").read_bytes()
WORD = "application/msword"


def run(data: bytes, name: str | None = "letter.doc") -> list[Part]:
    return list(extract(Item(data=data, name=name), Limits()))


def _fib(data: bytearray) -> int:
    """Where the WordDocument stream (and its FIB, starting 0xA5EC) begins: a sector."""
    return next(at for at in range(512, len(data), 512) if data[at : at + 2] == b"\xec\xa5")


def test_doc_text_is_extracted_whatever_the_name() -> None:
    text = f"Card {CARD}\nname\tSSN\t\tBob\t536-22-1234\t\tCafé \u2013 \u201cquoted\u201d\n"
    for name in ("letter.doc", "LETTER.DOC", "letter.txt", None):
        parts = run(LETTER, name)
        assert [(p.location, p.type, p.text, p.flags) for p in parts] == [(name or "item", WORD, text, ())]


def test_encrypted_doc_is_flagged() -> None:
    data = bytearray(LETTER)
    fib = _fib(data)
    data[fib + 0x0B] |= 0x01
    assert [(p.type, p.text, p.flags) for p in run(bytes(data))] == [(WORD, "", ("encrypted",))]


def test_damaged_doc_is_corrupt() -> None:
    data = bytearray(LETTER)
    fib = _fib(data)
    data[fib : fib + 2] = b"\x00\x00"
    assert [(p.type, p.text, p.flags) for p in run(bytes(data))] == [(WORD, "", ("corrupt",))]
    assert [p.flags for p in run(LETTER[:3000])] == [("corrupt",)]


def test_overlapping_pieces_stop_at_the_stream_size(tmp_path: Path) -> None:
    """A piece table whose pieces all point at the same bytes would repeat the stream
    without end: reading stops once the pieces have given as many characters as the
    stream has bytes, with `corrupt` on the text read."""
    path = tmp_path / "letter.doc"
    path.write_bytes(LETTER)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        document = bytearray(ole.openstream("WordDocument").read())
        table = bytearray(ole.openstream("1Table").read())
        position = 32 + 2 + 2 * struct.unpack_from("<H", document, 32)[0]
        position += 2 + 4 * struct.unpack_from("<H", document, position)[0]
        clx_at = position + 2 + 8 * 33
        (fc_clx,) = struct.unpack_from("<L", document, clx_at)
        size = len(document)
        # Three 8-bit pieces of `size` characters each, all read from offset 0.
        cps = struct.pack("<4L", 0, size, 2 * size, 3 * size)
        pcd = struct.pack("<HLH", 0, 0x40000000, 0) * 3
        clx = b"\x02" + struct.pack("<L", len(cps) + len(pcd)) + cps + pcd
        table[fc_clx : fc_clx + len(clx)] = clx
        struct.pack_into("<L", document, clx_at + 4, len(clx))
        ole.write_stream("1Table", bytes(table))
        ole.write_stream("WordDocument", bytes(document))
    [part] = run(path.read_bytes())
    assert (part.type, part.flags) == (WORD, ("corrupt",))
    # The first piece only (the stream read as cp1252, Word's control characters dropped):
    # the letter's UTF-16 text appears in it once, not three times.
    assert 0 < len(part.text) <= size
    assert part.text.count("Card") == 1
