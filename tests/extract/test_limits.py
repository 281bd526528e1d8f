"""Limits, bombs, encryption and path tricks: every branch that stops is flagged, and
extraction still ends with what it found."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zlib
from pathlib import Path

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits, Part
from tests.extract import samples
from tests.extract.samples import CARD, RawEntry


def run(data: bytes, name: str | None = None, limits: Limits | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), limits or Limits()))


def flags_by_location(parts: list[Part]) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {}
    for part in parts:
        out.setdefault(part.location, set()).update(part.flags)
    return {location: tuple(sorted(flags)) for location, flags in out.items()}


def all_flags(parts: list[Part]) -> set[str]:
    return {flag for part in parts for flag in part.flags}


@pytest.mark.timeout(30)
def test_nested_zip_bomb_stops_flagged() -> None:
    parts = run(samples.nested_bomb(), "42.zip")
    assert all_flags(parts) == {"limit:ratio"}
    leaves = [p for p in parts if p.location.endswith(".txt")]
    assert {p.flags for p in leaves} == {("limit:ratio",)}
    assert sum(len(p.text) for p in parts) == 0


@pytest.mark.timeout(30)
def test_overlapping_entry_bomb_is_refused() -> None:
    parts = run(samples.overlap_bomb(), "overlap.zip")
    assert [(p.location, p.flags) for p in parts] == [("overlap.zip", ("corrupt",))]


def test_lying_sizes_are_caught_while_inflating() -> None:
    data = b"a" * (16 << 20)
    compressed = samples.deflate(data)
    entry = RawEntry("big.txt", compressed, 8, len(compressed), zlib.crc32(data))
    parts = run(samples.raw_zip([entry]), "liar.zip")
    assert flags_by_location(parts) == {"liar.zip": (), "liar.zip/big.txt": ("limit:ratio",)}
    text = "".join(p.text for p in parts if p.location == "liar.zip/big.txt")
    assert 1 << 20 < len(text) < 2 << 20
    assert set(text) == {"a"}


def test_gzip_bomb_is_cut_at_the_ratio() -> None:
    raw = samples.deflated_zeros(16 << 20)
    data = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + struct.pack("<2L", 0, 16 << 20)
    assert flags_by_location(run(data, "zeros.gz")) == {
        "zeros.gz": (),
        "zeros.gz/zeros": ("limit:ratio", "unsupported"),
    }


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (
            Limits(max_member_bytes=1000),
            {"a.zip": (), "a.zip/1.txt": ("limit:size",), "a.zip/2.txt": ("limit:size",), "a.zip/3.txt": ()},
        ),
        (
            Limits(max_total_bytes=3000),
            {"a.zip": (), "a.zip/1.txt": (), "a.zip/2.txt": ("limit:size",), "a.zip/3.txt": ("limit:size",)},
        ),
        (Limits(max_files=2), {"a.zip": ("limit:files",), "a.zip/1.txt": (), "a.zip/2.txt": ()}),
        (Limits(max_seconds=0), {"a.zip": ("limit:time",)}),
    ],
)
def test_limits_stop_the_branch_and_flag_it(limits: Limits, expected: dict[str, tuple[str, ...]]) -> None:
    members = {"1.txt": b"x" * 2500 + b"\n", "2.txt": b"y" * 2500 + b"\n", "3.txt": f"{CARD}\n".encode()}
    parts = run(samples.zip_bytes(members), "a.zip", limits)
    assert flags_by_location(parts) == expected


def test_truncated_member_keeps_what_was_read() -> None:
    parts = run(
        samples.zip_bytes({"1.txt": f"{CARD}\n".encode() * 100}), "a.zip", Limits(max_member_bytes=40)
    )
    assert [(p.location, p.text, p.flags) for p in parts][1] == (
        "a.zip/1.txt",
        f"{CARD}\n{CARD}\n",
        ("limit:size",),
    )


def test_7z_member_past_the_limit_keeps_the_blocks_read() -> None:
    data = f"{CARD}\n".encode() + b"x" * (12 << 20)
    parts = run(samples.sevenzip_bytes({"big.txt": data}), "big.7z", Limits(max_member_bytes=6 << 20))
    assert flags_by_location(parts) == {"big.7z": ("limit:size",), "big.7z/big.txt": ("limit:size",)}
    member = [p for p in parts if p.location == "big.7z/big.txt"]
    assert {p.size for p in member} == {4 << 20}
    assert "".join(p.text for p in member) == data[: 4 << 20].decode()


def shared_string_xlsx(rows: int, shared: str) -> bytes:
    """A workbook whose one sheet has `rows` cells all naming shared string 0, then CARD."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    cells = "".join(f'<row r="{i}"><c r="A{i}" t="s"><v>0</v></c></row>' for i in range(1, rows + 1))
    return samples.zip_bytes(
        {
            "[Content_Types].xml": b"<Types/>",
            "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>'.encode(),
            "xl/_rels/workbook.xml.rels": b'<Relationships><Relationship Id="rId1" '
            b'Target="worksheets/sheet1.xml"/></Relationships>',
            "xl/sharedStrings.xml": f'<sst xmlns="{main}"><si><t>{shared}</t></si></sst>'.encode(),
            "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>{cells}'
            f'<row r="{rows + 1}"><c r="A{rows + 1}" t="inlineStr"><is><t>{CARD}</t></is></c></row>'
            "</sheetData></worksheet>".encode(),
        }
    )


def test_shared_string_text_stops_at_the_total_limit() -> None:
    data = shared_string_xlsx(2000, "x" * 1000)
    assert len(data) < 20_000
    parts = run(data, "bomb.xlsx", Limits(max_total_bytes=500_000))
    assert flags_by_location(parts) == {"bomb.xlsx": (), "bomb.xlsx#S": ("limit:size",)}
    # the XML read (about 100 KB) counts too: 398 rows of 1001 characters fit in the rest
    assert "".join(p.text for p in parts) == ("x" * 1000 + "\n") * 398


def test_long_member_names_are_cut() -> None:
    """Names and location segments keep their last 512 characters (with the extension),
    marked where cut."""
    name = "d/" + "n" * 200_000 + ".txt"
    parts = run(samples.tar_bytes({name: f"{CARD}\n".encode()}), "t.tar")
    assert [(p.location, p.name, p.text) for p in parts[1:]] == [
        ("t.tar/\u2026" + "n" * 508 + ".txt", "\u2026" + "n" * 508 + ".txt", f"{CARD}\n")
    ]


def test_long_attachment_names_are_cut() -> None:
    name = "n" * 200_000 + ".txt"
    parts = run(samples.email_bytes({name: f"{CARD}\n".encode()}, body="hi\n"), "m.eml")
    assert [(p.location, p.name, p.text) for p in parts if "attachment" in p.location] == [
        ("message/attachment[1]:\u2026" + "n" * 508 + ".txt", "\u2026" + "n" * 508 + ".txt", f"{CARD}\n")
    ]


def test_depth_limit() -> None:
    data = f"{CARD}\n".encode()
    for level in range(20):
        data = samples.zip_bytes({f"l{level}.zip" if level else "card.txt": data})
    parts = run(data, "deep.zip")
    flagged = [p for p in parts if p.flags]
    assert [p.flags for p in flagged] == [("limit:depth",)]
    assert flagged[0].location.count("/") == Limits().max_depth + 1
    assert all(CARD not in p.text for p in parts)


ODF_MANIFEST = (
    b'<m:manifest xmlns:m="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
    b'<m:file-entry m:full-path="content.xml"><m:encryption-data/></m:file-entry></m:manifest>'
)


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (
            samples.raw_zip(
                [
                    RawEntry("secret.xlsx", os.urandom(64), 8, 100, 0, flags=0x1),
                    samples.raw_entry("a.txt", b"hi"),
                ]
            ),
            "zipcrypto.zip",
            {"zipcrypto.zip": (), "zipcrypto.zip/secret.xlsx": ("encrypted",), "zipcrypto.zip/a.txt": ()},
        ),
        (
            samples.raw_zip([RawEntry("secret.csv", os.urandom(64), 99, 100, 0, flags=0x1)]),
            "aes.zip",
            {"aes.zip": (), "aes.zip/secret.csv": ("encrypted",)},
        ),
        (samples.pdf_bytes(password="user-secret"), "locked.pdf", {"locked.pdf": ("encrypted",)}),
        (samples.encrypted_office(samples.xlsx_bytes()), "locked.xlsx", {"locked.xlsx": ("encrypted",)}),
        (
            samples.sevenzip_bytes({"a.txt": CARD.encode()}, password="pw"),
            "locked.7z",
            {"locked.7z": ("encrypted",)},
        ),
        (
            samples.zip_bytes(
                {
                    "mimetype": b"application/vnd.oasis.opendocument.text",
                    "META-INF/manifest.xml": ODF_MANIFEST,
                    "content.xml": os.urandom(200),
                }
            ),
            "locked.odt",
            {"locked.odt": ("encrypted",)},
        ),
    ],
)
def test_encrypted_content_is_flagged(data: bytes, name: str, expected: dict[str, tuple[str, ...]]) -> None:
    assert flags_by_location(run(data, name)) == expected


def test_hostile_member_names_are_only_locations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    zipped = samples.zip_bytes({"../../evil.txt": b"zip", "/etc/cron.d/x": b"abs", "a\nb.txt": b"ctl"})
    tarred = io.BytesIO()
    with tarfile.open(fileobj=tarred, mode="w") as archive:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
        evil = tarfile.TarInfo("../up.txt")
        evil.size = 3
        archive.addfile(evil, io.BytesIO(b"tar"))
    texts = {p.location: p.text for p in run(zipped, "z.zip") + run(tarred.getvalue(), "t.tar") if p.text}
    assert texts == {
        "z.zip/../../evil.txt": "zip",
        "z.zip/etc/cron.d/x": "abs",
        "z.zip/a?b.txt": "ctl",
        "t.tar/../up.txt": "tar",
    }
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent.parent / "evil.txt").exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04" + b"\x00" * 100, {"item": ("corrupt",)}),
        (samples.zip_bytes({"a.txt": b"hello"})[:-30], {"item": ("corrupt",)}),
        (gzip.compress(b"hello world " * 1000)[:-40], {"item": (), "item/content": ("corrupt",)}),
        (samples.tar_bytes({"a.txt": b"hello"})[:700], {"item": ("corrupt",), "item/a.txt": ()}),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nendobj\n%%EOF", {"item": ("corrupt",)}),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 40, {"item": ("corrupt",)}),
    ],
)
def test_damaged_containers_are_corrupt(data: bytes, expected: dict[str, tuple[str, ...]]) -> None:
    assert flags_by_location(run(data)) == expected
