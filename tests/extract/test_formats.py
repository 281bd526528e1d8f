"""A card number planted in each format is found in the extracted text at the right location."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits, Part, Table
from tests.extract import samples
from tests.extract.samples import CARD

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def run(data: bytes, name: str | None = None, limits: Limits | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), limits or Limits()))


def texts(parts: list[Part]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        out[part.location] = out.get(part.location, "") + part.text
    return out


@pytest.mark.parametrize(
    ("name", "build", "location", "mime", "expected"),
    [
        ("export.csv", samples.csv_bytes, "export.csv", "text/csv", f"name,card\nBob,{CARD}\n"),
        ("page.html", samples.html_bytes, "page.html", "text/html", f"\nHi\n\n{CARD}\n"),
        ("letter.docx", samples.docx_bytes, "letter.docx", DOCX, f"Card {CARD}\n"),
        ("letter.docx", samples.docx_bytes, "letter.docx#header1", DOCX, "Confidential header\n"),
        (
            "export.xlsx",
            samples.xlsx_bytes,
            "export.xlsx#Customers",
            XLSX,
            f"name\tcard\nCustomer 0\t{CARD}\n",
        ),
        ("export.xlsx", samples.xlsx_bytes, "export.xlsx#Archive", XLSX, "number\n4111111111111111\n"),
        ("deck.pptx", samples.pptx_bytes, "deck.pptx#slide1", PPTX, f"Quarterly numbers\nCard {CARD}\n"),
        ("deck.pptx", samples.pptx_bytes, "deck.pptx#notes1", PPTX, "Speaker notes\n"),
        (
            "letter.odt",
            samples.odt_bytes,
            "letter.odt",
            "application/vnd.oasis.opendocument.text",
            f"Card {CARD}\n",
        ),
        (
            "sheet.ods",
            samples.ods_bytes,
            "sheet.ods#Cards",
            "application/vnd.oasis.opendocument.spreadsheet",
            f"name\tcard\nBob\t{CARD}\n",
        ),
        ("report.pdf", samples.pdf_bytes, "report.pdf", "application/pdf", f"Page 1 card {CARD}\n\f\n"),
        ("letter.rtf", samples.rtf_bytes, "letter.rtf", "text/rtf", f"Card {CARD}\n"),
    ],
)
def test_card_found_at_location(
    name: str, build: Callable[[], bytes], location: str, mime: str, expected: str
) -> None:
    parts = run(build(), name)
    found = [part for part in parts if part.location == location and part.text]
    assert [(p.type, p.flags) for p in found] == [(mime, ())]
    assert found[0].text == expected


@pytest.mark.parametrize(
    ("build", "location", "header"),
    [
        (samples.xlsx_bytes, "export.xlsx#Customers", ("name", "card")),
        (samples.xlsx_bytes, "export.xlsx#Archive", ("number",)),
        (samples.ods_bytes, "sheet.ods#Cards", ("name", "card")),
    ],
)
def test_sheets_are_tsv_tables_with_their_header(
    build: Callable[[], bytes], location: str, header: tuple[str, ...]
) -> None:
    tables = {p.table for p in run(build(), location.partition("#")[0]) if p.location == location}
    assert tables == {Table("\t", header)}


def test_every_sheet_chunk_carries_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlp.extract.text.CHUNK_CHARS", 64)
    parts = [p for p in run(samples.xlsx_bytes(rows=5), "big.xlsx") if p.location == "big.xlsx#Customers"]
    assert [p.offset for p in parts] == [0, 41, 103]
    assert {p.table for p in parts} == {Table("\t", ("name", "card"))}
    rows = [f"Customer {i}\t{CARD}\n" for i in range(5)]
    assert [p.text for p in parts] == ["name\tcard\n" + rows[0], "".join(rows[1:3]), "".join(rows[3:])]


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (
            samples.zip_bytes({"2024/export.csv": samples.csv_bytes(), "2024/": b""}),
            "customers.zip",
            {"customers.zip": "", "customers.zip/2024/export.csv": f"name,card\nBob,{CARD}\n"},
        ),
        (
            samples.tar_bytes({"dump/notes.txt": f"card {CARD}\n".encode()}, "w:gz"),
            "backup.tar.gz",
            {"backup.tar.gz": "", "backup.tar.gz/dump/notes.txt": f"card {CARD}\n"},
        ),
        (
            samples.tar_bytes({"dump/notes.txt": f"card {CARD}\n".encode()}, "w:bz2"),
            "backup.tbz2",
            {"backup.tbz2": "", "backup.tbz2/dump/notes.txt": f"card {CARD}\n"},
        ),
        (
            samples.tar_bytes({"dump/notes.txt": f"card {CARD}\n".encode()}, "w:xz"),
            None,
            {"item": "", "item/dump/notes.txt": f"card {CARD}\n"},
        ),
        (
            samples.gzip_bytes(samples.csv_bytes()),
            "export.csv.gz",
            {"export.csv.gz": "", "export.csv.gz/export.csv": f"name,card\nBob,{CARD}\n"},
        ),
        (
            samples.sevenzip_bytes({"in/notes.txt": f"card {CARD}\n".encode()}),
            "a.7z",
            {"a.7z": "", "a.7z/in/notes.txt": f"card {CARD}\n"},
        ),
    ],
)
def test_archive_members_at_their_paths(data: bytes, name: str | None, expected: dict[str, str]) -> None:
    parts = run(data, name)
    assert texts(parts) == expected
    assert all(p.flags == () for p in parts)


def test_any_mix_nests() -> None:
    inner_mail = samples.email_bytes({"export.xlsx": samples.xlsx_bytes()}, body="see attached\n")
    archive = samples.zip_bytes({"fwd/inner.eml": inner_mail})
    outer = samples.email_bytes({"customers.zip": archive}, body="hello\n")
    found = texts(run(outer, "outer.eml"))
    location = "message/attachment[1]:customers.zip/fwd/inner.eml/attachment[1]:export.xlsx#Customers"
    assert found[location] == f"name\tcard\nCustomer 0\t{CARD}\n"
    assert found["message/attachment[1]:customers.zip/fwd/inner.eml/body[1]"] == "see attached\n"


def test_office_embedded_objects_are_members() -> None:
    embedded = samples.xlsx_bytes()
    docx = samples.docx_bytes()
    with_object = samples.zip_bytes(
        {**{n: d for n, d in _zip_members(docx).items()}, "word/embeddings/Sheet1.xlsx": embedded}
    )
    found = texts(run(with_object, "memo.docx"))
    assert found["memo.docx/word/embeddings/Sheet1.xlsx#Customers"] == f"name\tcard\nCustomer 0\t{CARD}\n"


def _zip_members(data: bytes) -> dict[str, bytes]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_type_comes_from_content_not_name() -> None:
    parts = run(samples.pdf_bytes(), "innocent.txt")
    assert [(p.location, p.type) for p in parts] == [("innocent.txt", "application/pdf")]
    assert CARD in parts[0].text
