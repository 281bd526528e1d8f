"""Outlook .msg files for the tests, built from their streams: no Python library writes
.msg (olefile only reads compound files), so `compound_file` is a minimal writer of
[MS-CFB] version 3 files (512-byte sectors; streams under 4096 bytes in the mini stream,
as the format requires), `outlook_message` lays out the [MS-OXMSG] storages and
streams that `dlp.extract.msg` reads and `compressed_rtf` writes an RTF body the way
[MS-OXRTFCP] compresses it."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

Tree = dict[str, "bytes | Tree"]

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREE = 0xFFFFFFFF
END = 0xFFFFFFFE
FAT_SECTOR = 0xFFFFFFFD
SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class _Entry:
    name: str
    kind: int  # 1 storage, 2 stream, 5 root
    data: bytes = b""
    kids: list[int] = field(default_factory=list)
    left: int = FREE
    right: int = FREE
    child: int = FREE
    start: int = END
    size: int = 0


def compound_file(tree: Tree) -> bytes:
    """A compound file holding `tree` (names to stream bytes or to nested storages)."""
    entries = [_Entry("Root Entry", 5)]
    _add(entries, 0, tree)
    for entry in entries:
        entry.child = _balance(entries, sorted(entry.kids, key=lambda i: _order(entries[i].name)))
    mini = bytearray()
    mini_fat: list[int] = []
    big: list[_Entry] = []
    for entry in entries:
        if entry.kind != 2:
            continue
        entry.size = len(entry.data)
        if entry.size >= MINI_CUTOFF:
            big.append(entry)
            continue
        count = -(-entry.size // MINI_SECTOR)
        entry.start = len(mini_fat)
        mini_fat.extend([*range(entry.start + 1, entry.start + count), END])
        mini += entry.data.ljust(count * MINI_SECTOR, b"\0")
    sectors = bytearray()
    fat: list[int] = []

    def place(data: bytes) -> int:
        count = max(1, -(-len(data) // SECTOR))
        start = len(fat)
        fat.extend([*range(start + 1, start + count), END])
        sectors.extend(data.ljust(count * SECTOR, b"\0"))
        return start

    if mini:
        entries[0].start, entries[0].size = place(bytes(mini)), len(mini)
    for entry in big:
        entry.start = place(entry.data)
    while len(entries) % 4:
        entries.append(_Entry("", 0))
    directory = place(b"".join(_direntry(entry) for entry in entries))
    mini_fat_start = place(struct.pack(f"<{len(mini_fat)}I", *mini_fat)) if mini_fat else END
    mini_fat_sectors = -(-len(mini_fat) * 4 // SECTOR)
    fat_sectors = 1
    while (len(fat) + fat_sectors) > fat_sectors * (SECTOR // 4):
        fat_sectors += 1
    fat_start = len(fat)
    fat.extend([FAT_SECTOR] * fat_sectors)
    fat.extend([FREE] * (fat_sectors * (SECTOR // 4) - len(fat)))
    sectors += struct.pack(f"<{len(fat)}I", *fat)
    difat = [fat_start + index for index in range(fat_sectors)] + [FREE] * (109 - fat_sectors)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        SIGNATURE, b"\0" * 16, 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, fat_sectors, directory, 0,
        MINI_CUTOFF, mini_fat_start, mini_fat_sectors, END, 0, *difat,
    )  # fmt: skip
    return header + bytes(sectors)


def _add(entries: list[_Entry], parent: int, tree: Tree) -> None:
    for name, value in tree.items():
        index = len(entries)
        entries[parent].kids.append(index)
        if isinstance(value, bytes):
            entries.append(_Entry(name, 2, value))
        else:
            entries.append(_Entry(name, 1))
            _add(entries, index, value)


def _order(name: str) -> tuple[int, str]:
    """[MS-CFB]'s sibling order: shorter names first, then by upper-cased name."""
    return len(name), name.upper()


def _balance(entries: list[_Entry], ordered: list[int]) -> int:
    """The root of a balanced binary tree of `ordered` siblings (every node black)."""
    if not ordered:
        return FREE
    middle = len(ordered) // 2
    root = entries[ordered[middle]]
    root.left = _balance(entries, ordered[:middle])
    root.right = _balance(entries, ordered[middle + 1 :])
    return ordered[middle]


def _direntry(entry: _Entry) -> bytes:
    name = (entry.name.encode("utf-16-le") + b"\0\0") if entry.name else b""
    return struct.pack(
        "<64sHBBIII16sI8s8sIQ",
        name, len(name), entry.kind, 1, entry.left, entry.right, entry.child, b"\0" * 16, 0,
        b"\0" * 8, b"\0" * 8, entry.start if entry.kind in (2, 5) else 0, entry.size,
    )  # fmt: skip


def _unicode(prop: str, text: str) -> dict[str, bytes | Tree]:
    return {f"__substg1.0_{prop}001F": text.encode("utf-16-le")}


def outlook_message(
    subject: str,
    body: str | None = None,
    *,
    html: bytes | None = None,
    rtf: bytes | None = None,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    embedded: list[Tree] = (),  # type: ignore[assignment]
    sender: str = "Ann Lee",
    to: str = "Bob Stone; Carol Diaz",
    top: bool = True,
) -> Tree:
    """The storages and streams of an Outlook message: subject, sender and recipients'
    display names, a plain body (UTF-16), an HTML body, a compressed RTF body (as is),
    file attachments (long name and data) and embedded messages (made with `top=False`)."""
    tree: Tree = {"__properties_version1.0": b"\0" * (32 if top else 24)}
    if top:
        tree["__nameid_version1.0"] = {"__substg1.0_00020102": b"\0" * 16}
    tree.update(_unicode("0037", subject))
    tree.update(_unicode("0C1A", sender))
    tree.update(_unicode("0E04", to))
    if body is not None:
        tree.update(_unicode("1000", body))
    if html is not None:
        tree["__substg1.0_10130102"] = html
    if rtf is not None:
        tree["__substg1.0_10090102"] = rtf
    index = 0
    for name, data in attachments:
        tree[f"__attach_version1.0_#{index:08X}"] = {
            "__properties_version1.0": b"\0" * 8,
            **_unicode("3707", name),
            "__substg1.0_37010102": data,
        }
        index += 1
    for message in embedded:
        tree[f"__attach_version1.0_#{index:08X}"] = {
            "__properties_version1.0": b"\0" * 8,
            "__substg1.0_3701000D": message,
        }
        index += 1
    return tree


def compressed_rtf(rtf: bytes) -> bytes:
    """`rtf` as [MS-OXRTFCP] `LZFu` data: literals, except that a byte repeated is one
    literal then references (up to 17 bytes each) to it, reaching over the write position
    as in the specification's second example; then the end marker, in runs of eight
    tokens behind their control byte, and the header with the CRC."""
    write = 207
    tokens: list[tuple[bool, bytes]] = []
    at = 0
    while at < len(rtf):
        tokens.append((False, rtf[at : at + 1]))
        write, at = (write + 1) % 4096, at + 1
        repeat = 0
        while at + repeat < len(rtf) and repeat < 17 and rtf[at + repeat] == rtf[at - 1]:
            repeat += 1
        if repeat >= 2:
            tokens.append((True, struct.pack(">H", (write - 1) % 4096 << 4 | (repeat - 2))))
            write, at = (write + repeat) % 4096, at + repeat
    tokens.append((True, struct.pack(">H", write << 4)))
    body = bytearray()
    for start in range(0, len(tokens), 8):
        run = tokens[start : start + 8]
        body.append(sum(1 << bit for bit, (reference, _) in enumerate(run) if reference))
        body += b"".join(token for _, token in run)
    crc = zlib.crc32(body, 0xFFFFFFFF) ^ 0xFFFFFFFF
    return struct.pack("<II4sI", len(body) + 12, len(rtf), b"LZFu", crc) + bytes(body)
