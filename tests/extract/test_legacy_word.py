"""Word 97-2003 documents (.doc) are read through their piece table: the text, table
cells and cp1252 pieces come out as plain text; an encrypted one is `encrypted`, a
damaged one `corrupt`. The fixture was saved as .doc by LibreOffice 7.4 from a
python-docx document (no Python library writes .doc)."""

from __future__ import annotations

from pathlib import Path

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
