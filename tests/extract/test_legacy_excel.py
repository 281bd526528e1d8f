"""Excel 97-2003 workbooks (.xls) are read from their BIFF8 records: every sheet (hidden
ones too) as a TSV table with its header, shared strings followed across CONTINUE
records, numbers without exponent, cached formula results; FILEPASS is `encrypted`, a
compound file holding neither a workbook nor a Word document `unsupported`. The fixture
was saved as .xls by LibreOffice 7.4 from an openpyxl workbook (no Python library
writes .xls): 400 rows of shared strings, half of them UTF-16, so the SST spills into
a CONTINUE record."""

from __future__ import annotations

import struct
from pathlib import Path

from dlp.extract import extract
from dlp.model import Item, Limits, Part, Table
from tests.extract.samples import CARD

BOOK = (Path(__file__).parent / "fixtures" / "book.xls").read_bytes()
EXCEL = "application/vnd.ms-excel"


def run(data: bytes, name: str | None = "book.xls") -> list[Part]:
    return list(extract(Item(data=data, name=name), Limits()))


def texts(parts: list[Part]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        out[part.location] = out.get(part.location, "") + part.text
    return out


def test_every_sheet_is_a_table() -> None:
    parts = run(BOOK)
    unicode = "\u00dcn\u00efc\u00f8d\u00e9 \u2713"
    notes = "".join(
        f"{i}\t" + (f"row {i} {unicode}" if i % 2 else f"plain note {i}") + "\n" for i in range(400)
    )
    assert texts(parts) == {
        "book.xls": "",
        "book.xls#Notes": f"id\tnote\n{notes}400\tCard {CARD}\n",
        "book.xls#Cards": (
            "name\tcard number\tSSN\tformula\nBob\t4111111111111111\t536-22-1234\tRef A-1\nEve\t3.5\t42\t5\n"
        ),
        "book.xls#Secret": "SSN\n536-22-1234\n",
    }
    assert {(p.location, p.type, p.table, p.flags) for p in parts if p.text} == {
        ("book.xls#Notes", EXCEL, Table("\t", ("id", "note")), ()),
        ("book.xls#Cards", EXCEL, Table("\t", ("name", "card number", "SSN", "formula")), ()),
        ("book.xls#Secret", EXCEL, Table("\t", ("SSN",)), ()),
    }


def test_type_comes_from_content() -> None:
    assert "book.bin#Secret" in texts(run(BOOK, "book.bin"))


def _workbook_record(data: bytearray, kind: int) -> int:
    """Where the first record of type `kind` of the globals substream starts."""
    start = next(at for at in range(512, len(data), 512) if data[at : at + 4] == b"\x09\x08\x10\x00")
    position = start
    while struct.unpack_from("<H", data, position)[0] != kind:
        position += 4 + struct.unpack_from("<H", data, position + 2)[0]
    return position


def test_password_protected_workbook_is_encrypted() -> None:
    data = bytearray(BOOK)
    struct.pack_into("<H", data, _workbook_record(data, 0x00E1), 0x002F)
    assert [(p.location, p.type, p.flags) for p in run(bytes(data))] == [("book.xls", EXCEL, ("encrypted",))]


def test_other_compound_file_is_unsupported() -> None:
    data = BOOK.replace("Workbook".encode("utf-16-le"), "Workbank".encode("utf-16-le"))
    assert [(p.location, p.flags) for p in run(data)] == [("book.xls", ("unsupported",))]


def test_damaged_sheet_is_corrupt_and_the_others_are_read() -> None:
    """The second worksheet BOF (BIFF8, type 0x10) is the Cards sheet's; its record
    type is overwritten, so xlrd cannot start that sheet."""
    data = bytearray(BOOK)
    bof = b"\x09\x08\x10\x00\x00\x06\x10\x00"
    cards = data.index(bof, data.index(bof) + 1)
    data[cards : cards + 2] = b"\xff\xff"
    parts = run(bytes(data))
    assert [(p.location, p.flags) for p in parts if not p.text] == [
        ("book.xls", ()),
        ("book.xls#Cards", ("corrupt",)),
    ]
    assert texts(parts)["book.xls#Secret"] == "SSN\n536-22-1234\n"
    assert texts(parts)["book.xls#Notes"].endswith(f"400\tCard {CARD}\n")
