"""Text formats: encodings, CSV/TSV tables, HTML, JSON, XML and chunking of large texts."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from dlp.extract import extract
from dlp.extract.text import Chunker
from dlp.model import Item, Limits, Part, Table

CARD = "4111 1111 1111 1111"


def parts_of(data: bytes, name: str | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), Limits()))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (f"card {CARD} é\n".encode(), f"card {CARD} é\n"),
        (codecs.BOM_UTF8 + f"card {CARD} é\n".encode(), f"card {CARD} é\n"),
        (f"card {CARD} é\n".encode("utf-16"), f"card {CARD} é\n"),
        (f"card {CARD} é\n".encode("utf-16-le"), f"card {CARD} é\n"),
        (f"card {CARD} é\n".encode("utf-16-be"), f"card {CARD} é\n"),
        (f"card {CARD} é\n".encode("utf-32"), f"card {CARD} é\n"),
        (f"card {CARD} é \u2019\n".encode("cp1252"), f"card {CARD} é \u2019\n"),
        (f"card {CARD} \x81\n".encode("latin-1"), f"card {CARD} \ufffd\n"),
    ],
)
def test_plain_text_in_any_encoding(data: bytes, expected: str) -> None:
    assert parts_of(data) == [Part("item", "text/plain", len(data), expected)]


def test_plain_text_keeps_item_name_as_location() -> None:
    data = f"note {CARD}\n".encode()
    assert parts_of(data, "note.txt") == [
        Part("note.txt", "text/plain", len(data), f"note {CARD}\n", name="note.txt")
    ]


@pytest.mark.parametrize(
    ("data", "name", "mime", "table"),
    [
        (f"name,card\nbob,{CARD}\n".encode(), "export.csv", "text/csv", Table(",", ("name", "card"))),
        (
            f"name\tcard\nbob\t{CARD}\nann\t1\n".encode(),
            None,
            "text/tab-separated-values",
            Table("\t", ("name", "card")),
        ),
        (
            f"name;card;x\nbob;{CARD};1\nann;2;3\n".encode(),
            "list.txt",
            "text/csv",
            Table(";", ("name", "card", "x")),
        ),
        (
            f'"full name",card\n"Bob, Jr",{CARD}\n'.encode(),
            "a.csv",
            "text/csv",
            Table(",", ("full name", "card")),
        ),
    ],
)
def test_delimited_text_is_a_table(data: bytes, name: str | None, mime: str, table: Table) -> None:
    text = data.decode()
    assert parts_of(data, name) == [Part(name or "item", mime, len(data), text, name=name, table=table)]


def test_prose_with_commas_is_not_a_table() -> None:
    data = b"Hello, Bob.\nThe card, as agreed, is below.\nThanks\n"
    assert parts_of(data)[0].table is None


@pytest.mark.parametrize(
    ("data", "mime", "expected"),
    [
        (
            f'<html><body><p>Hi</p><div style="display:none">{CARD}</div><!-- 5500 0000 0000 0004 -->'
            '<img alt="alt text"></body></html>'.encode(),
            "text/html",
            f"\nHi\n\n{CARD}\n\n 5500 0000 0000 0004 \n\nalt text\n",
        ),
        (
            b'{"customer": {"card": "\\u0034111 1111 1111 1111", "note": "a\\/b \\"q\\" \\ud83d"}}',
            "application/json",
            f'{{"customer": {{"card": "{CARD}", "note": "a/b "q" \ufffd"}}}}',
        ),
        (
            f'<?xml version="1.0"?><r id="7"><card>{CARD}</card></r>'.encode(),
            "text/xml",
            f"\nid: 7\n{CARD}\n\n",
        ),
    ],
)
def test_markup_is_reduced_to_text(data: bytes, mime: str, expected: str) -> None:
    assert parts_of(data) == [Part("item", mime, len(data), expected)]


def test_billion_laughs_is_not_expanded() -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><l>&c;&c;&c;&c;&c;&c;&c;</l>'
    )
    assert parts_of(data) == [Part("item", "text/xml", len(data), data.decode())]


def test_chunker_cuts_at_line_ends_with_offsets() -> None:
    chunker = Chunker(size=10)
    out = [*chunker.add("abc\ndefg\nhij"), *chunker.add("klmnopqrstu\n"), *chunker.finish()]
    assert out == [(0, "abc\ndefg\n"), (9, "hijklmnopq"), (19, "rstu\n")]


def test_large_text_arrives_in_chunks_with_offsets(tmp_path: Path) -> None:
    line = f"row {CARD} lorem ipsum dolor sit amet\n"
    count = 9 * 1024 * 1024 // len(line)
    path = tmp_path / "big.txt"
    path.write_text(line * count)
    parts = list(extract(Item(path=path, name="big.txt"), Limits()))
    assert len(parts) == 3
    assert [p.offset for p in parts] == [0, len(parts[0].text), len(parts[0].text) + len(parts[1].text)]
    assert all(p.text.endswith("\n") and p.location == "big.txt" and p.flags == () for p in parts)
    assert "".join(p.text for p in parts) == line * count


def test_binary_is_unsupported() -> None:
    assert parts_of(b"\x00\x01\x02\xff binary") == [
        Part("item", "application/octet-stream", 11, "", ("unsupported",))
    ]


def test_empty_item_yields_one_clean_part() -> None:
    assert parts_of(b"", "empty.txt") == [Part("empty.txt", "application/x-empty", 0, "", name="empty.txt")]
