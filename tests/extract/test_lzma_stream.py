"""Legacy LZMA streams (`.lzma`, `.tlz`: lzma-utils' format, still written by `xz
--format=lzma` and old backup scripts) are decompressed like xz, not left unsupported."""

from __future__ import annotations

import lzma

from dlp.extract import extract
from dlp.model import Item, Limits
from tests.extract import samples
from tests.extract.samples import CARD


def test_lzma_stream_is_decompressed() -> None:
    data = lzma.compress(f"Card {CARD}\n".encode(), format=lzma.FORMAT_ALONE)
    parts = list(extract(Item(data=data, name="notes.txt.lzma"), Limits()))
    assert [(p.location, p.type, p.text, p.flags) for p in parts] == [
        ("notes.txt.lzma", "application/x-lzma", "", ()),
        ("notes.txt.lzma/notes.txt", "text/plain", f"Card {CARD}\n", ()),
    ]


def test_lzma_compressed_tar_lists_its_members() -> None:
    tar = samples.tar_bytes({"export/notes.txt": f"Card {CARD}\n".encode()})
    data = lzma.compress(tar, format=lzma.FORMAT_ALONE)
    parts = list(extract(Item(data=data, name="backup.tlz"), Limits()))
    assert [(p.location, p.text, p.flags) for p in parts if p.text] == [
        ("backup.tlz/export/notes.txt", f"Card {CARD}\n", ()),
    ]
