"""ZIP members compressed with LZMA (method 14, which 7-Zip and WinZip write on request)
are decompressed and scanned like deflated ones; a damaged LZMA header is `corrupt`."""

from __future__ import annotations

import io
import zipfile

from dlp.extract import extract
from dlp.model import Item, Limits, Part
from tests.extract import samples
from tests.extract.samples import CARD


def lzma_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_LZMA) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def run(data: bytes) -> list[Part]:
    return list(extract(Item(data=data, name="export.zip"), Limits()))


def test_lzma_members_are_read() -> None:
    text = ("filler line\n" * 20000 + f"Card {CARD}\n").encode()
    data = lzma_zip({"notes.txt": text, "letter.docx": samples.docx_bytes()})
    parts = run(data)
    found: dict[str, str] = {}
    for part in parts:
        found[part.location] = found.get(part.location, "") + part.text
    assert [p.flags for p in parts if p.flags] == []
    assert found["export.zip/notes.txt"] == text.decode()
    assert found["export.zip/letter.docx"] == f"Card {CARD}\n"


def test_damaged_lzma_header_is_corrupt() -> None:
    data = bytearray(lzma_zip({"notes.txt": f"Card {CARD}\n".encode()}))
    header = data.index(b"notes.txt") + len(b"notes.txt")
    data[header + 4] = 0xFF
    parts = run(bytes(data))
    assert [(p.location, p.flags) for p in parts] == [
        ("export.zip", ()),
        ("export.zip/notes.txt", ("corrupt",)),
    ]
