"""Outlook items (.msg, [MS-OXMSG]): an OLE compound file whose MAPI properties are
streams named `__substg1.0_IIIITTTT` (property id, then type: `001F` UTF-16LE text,
`001E` 8-bit text in the message's code page, `0102` binary), read with olefile.

Parts, under the item's own location (a .msg is a file, never the relayed message):
`headers` (Subject, the display names of the sender, To and Cc, and one `File-Name:`
line per attachment, as for MIME mail), `body[1]` (the plain body), `body[2]` (the HTML
body, markup removed) and `attachment[N]:NAME` (each `__attach_version1.0_#` storage:
its data stream extracted in turn, or an embedded message, `__substg1.0_3701000D`, read
the same way under its attachment's location). A message with neither a plain nor an
HTML body, as older and "rich text" items are, has its compressed RTF body
(`__substg1.0_10090102`, [MS-OXRTFCP], see `dlp.extract.lzfu`) at `body[1]`, read as
RTF (HTML encapsulated in RTF too); a damaged one (bad CRC, cut short) is flagged
`corrupt` there, one larger than the per-member limit once decompressed is cut and
flagged `limit:size`. An attached OLE object is flagged `unsupported`. Streams larger
than the per-member limit are not read. Damage
olefile reads past (a directory it had to repair, a stream name that is no MAPI name,
so a body or attachment may be missing) flags the message's own part `corrupt` and
the rest is still read.

extract-msg was not taken: it is GPL-3.0 (we are Apache-2.0) and pins olefile to one
version; the few property streams needed are read here with olefile directly.
"""

from __future__ import annotations

import codecs
import re
import struct
from collections.abc import Iterator

import olefile

from dlp.extract import documents, lzfu, text
from dlp.extract.mail import FILE_NAME_LABEL, HEADERS_PART
from dlp.extract.members import location_segment
from dlp.extract.node import CORRUPT, LIMIT_DEPTH, LIMIT_SIZE, UNSUPPORTED, Context, LimitReached, Node
from dlp.model import Part

__all__ = ["MSG_MIME", "is_msg", "read_msg"]

MSG_MIME = "application/vnd.ms-outlook"
_PROPERTIES = "__properties_version1.0"
_ATTACHMENT = "__attach_version1.0_#"
_EMBEDDED = "__substg1.0_3701000D"
_DATA = "__substg1.0_37010102"
_HTML = "__substg1.0_10130102"
_RTF = "__substg1.0_10090102"
_SUBJECT, _SENDER, _TO, _CC, _BODY = "0037", "0C1A", "0E04", "0E03", "1000"
_LONG_NAME, _SHORT_NAME, _DISPLAY_NAME = "3707", "3704", "3001"
_CODEPAGE_TAGS = (0x3FFD0003, 0x3FDE0003)  # PR_MESSAGE_CODEPAGE, PR_INTERNET_CPID
_CODEPAGES = {65001: "utf-8", 20127: "ascii", 28591: "latin-1", 28592: "iso8859-2", 28605: "iso8859-15"}
_UNREAD = "application/octet-stream"
_RTF_MIME = "text/rtf"
_NAME = re.compile(
    r"(__(substg1\.0_[0-9A-F]{8}|properties_version1\.0|(recip|attach)_version1\.0_#[0-9A-F]{8}|nameid_version1\.0)"
    r"|[\x01-\x06][^\x00-\x1f]*)\Z",
    re.IGNORECASE,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Path = tuple[str, ...]


def is_msg(ole: olefile.OleFileIO) -> bool:
    """Whether a compound file is an Outlook item (its root holds the property stream)."""
    return bool(ole.exists(_PROPERTIES))


def read_msg(node: Node, ctx: Context, ole: olefile.OleFileIO) -> Iterator[Part]:
    """Every part of an Outlook item, nested messages included."""
    children: dict[Path, list[str]] = {}
    for path in ole.listdir(streams=True, storages=True):
        ctx.check_time()
        children.setdefault(tuple(p.lower() for p in path[:-1]), []).append(path[-1])
    yield from _message(node, ctx, _Reader(ole, ctx, children), (), node.location, node.depth)


class _Reader:
    """Streams of one compound file, read under the member size limit."""

    def __init__(self, ole: olefile.OleFileIO, ctx: Context, children: dict[Path, list[str]]) -> None:
        self.ole = ole
        self.ctx = ctx
        self.children = children

    def exists(self, path: Path) -> bool:
        return bool(self.ole.exists("/".join(path)))

    def kids(self, path: Path) -> list[str]:
        return self.children.get(tuple(p.lower() for p in path), [])

    def read(self, path: Path) -> bytes | None:
        """The stream's bytes, None when absent; `LimitReached(limit:size)` when too large."""
        name = "/".join(path)
        if self.ole.get_type(name) != olefile.STGTY_STREAM:
            return None
        if self.ole.get_size(name) > self.ctx.limits.max_member_bytes:
            raise LimitReached(LIMIT_SIZE)
        self.ctx.check_time()
        with self.ole.openstream(name) as handle:
            data: bytes = handle.read()
        return data

    def raw_string(self, prefix: Path, prop: str, codepage: str | None) -> tuple[bytes, str] | None:
        """A text property's bytes and encoding: `001F` UTF-16LE, else `001E` in the
        message's code page (cp1252 when it has none)."""
        data = self.read((*prefix, f"__substg1.0_{prop}001F"))
        if data is not None:
            return data, "utf-16-le"
        data = self.read((*prefix, f"__substg1.0_{prop}001E"))
        return None if data is None else (data, codepage or "cp1252")

    def string(self, prefix: Path, prop: str, codepage: str | None) -> str | None:
        """A text property, decoded."""
        raw = self.raw_string(prefix, prop, codepage)
        return None if raw is None else raw[0].decode(raw[1], "replace").rstrip("\0")

    def codepage(self, prefix: Path) -> str | None:
        """The message's code page from its fixed-size properties, if it has one."""
        data = self.read((*prefix, _PROPERTIES)) or b""
        header = 32 if not prefix else 24
        values = {}
        for at in range(header, len(data) - 15, 16):
            tag, _, value = struct.unpack_from("<IIQ", data, at)
            values[tag] = value & 0xFFFFFFFF
        for tag in _CODEPAGE_TAGS:
            if tag in values:
                try:
                    return codecs.lookup(_CODEPAGES.get(values[tag], f"cp{values[tag]}")).name
                except LookupError:
                    break
        return None


def _message(
    node: Node, ctx: Context, reader: _Reader, prefix: Path, base: str, depth: int
) -> Iterator[Part]:
    attachments = sorted(name for name in reader.kids(prefix) if name.lower().startswith(_ATTACHMENT))
    damaged = (not prefix and bool(reader.ole.parsing_issues)) or any(
        _NAME.match(name) is None
        for path in (prefix, *((*prefix, attachment) for attachment in attachments))
        for name in reader.kids(path)
    )
    yield node.part("", (CORRUPT,) if damaged else (), location=base, mime=MSG_MIME)
    codepage = reader.codepage(prefix)
    names = [
        (attachment, _attachment_name(reader, (*prefix, attachment), codepage)) for attachment in attachments
    ]
    headers = [
        ("Subject", reader.string(prefix, _SUBJECT, codepage)),
        ("From", reader.string(prefix, _SENDER, codepage)),
        ("To", _names(reader.string(prefix, _TO, codepage))),
        ("Cc", _names(reader.string(prefix, _CC, codepage))),
        *((FILE_NAME_LABEL, name) for _, name in names if name),
    ]
    lines = "".join(f"{key}: {_CONTROL.sub(' ', value)}\n" for key, value in headers if value)
    yield node.part(lines, location=f"{base}/{HEADERS_PART}", mime="text/plain")
    yield from _bodies(node, ctx, reader, prefix, (base, depth), codepage)
    for index, (attachment, name) in enumerate(names, start=1):
        ctx.check_time()
        ctx.count_file()
        path = (*prefix, attachment)
        embedded = (*path, _EMBEDDED)
        fallback = "message.msg" if reader.exists(embedded) else "unnamed"
        location = f"{base}/attachment[{index}]:{location_segment(name or fallback)}"
        try:
            if not reader.exists(embedded):
                yield from _file(node, ctx, reader, path, location, name, depth)
            elif not reader.exists((*embedded, _PROPERTIES)):
                yield node.part("", (UNSUPPORTED,), location=location, mime=_UNREAD)
            elif depth + 1 > ctx.limits.max_depth:
                yield node.part("", (LIMIT_DEPTH,), location=location, mime=MSG_MIME)
            else:
                yield from _message(node, ctx, reader, embedded, location, depth + 1)
        except LimitReached as hit:
            if hit.flag != LIMIT_SIZE:
                raise
            yield node.part("", (LIMIT_SIZE,), location=location, mime=_UNREAD)
        except Exception:
            yield node.part("", (CORRUPT,), location=location, mime=_UNREAD)


def _bodies(
    node: Node, ctx: Context, reader: _Reader, prefix: Path, where: tuple[str, int], codepage: str | None
) -> Iterator[Part]:
    """The plain body at `body[1]` and the HTML body after it; without either, the
    RTF body at `body[1]`."""
    base, depth = where
    number = 0
    plain = reader.raw_string(prefix, _BODY, codepage)
    if plain is not None:
        number += 1
        location = f"{base}/body[{number}]"
        yield from ctx.read_spooled(iter([plain[0]]), location, depth + 1, "text/plain", plain[1], _plain)
    html = reader.read((*prefix, _HTML))
    if html is not None:
        number += 1
        location = f"{base}/body[{number}]"
        yield from ctx.read_spooled(iter([html]), location, depth + 1, "text/html", codepage, text.read_html)
    if number == 0:
        yield from _rtf_body(node, ctx, reader, prefix, where)


def _plain(child: Node, ctx: Context) -> Iterator[Part]:
    return text.text_parts(child, text.decoded_blocks(child, ctx), mime="text/plain")


def _rtf_body(
    node: Node, ctx: Context, reader: _Reader, prefix: Path, where: tuple[str, int]
) -> Iterator[Part]:
    """The compressed RTF body, when it is the only one, decompressed (see `lzfu`) under
    the member limits and read as RTF at `body[1]`; damage flags that part `corrupt`."""
    base, depth = where
    location = f"{base}/body[1]"
    try:
        data = reader.read((*prefix, _RTF))
    except LimitReached as hit:
        if hit.flag != LIMIT_SIZE:
            raise
        yield node.part("", (LIMIT_SIZE,), location=location, mime=_RTF_MIME)
        return
    if data is None:
        return
    blocks = lzfu.decompress(data)
    del data  # the decompressor holds it only until it is spooled
    yield from ctx.read_spooled(blocks, location, depth + 1, _RTF_MIME, None, documents.read_rtf)


def _file(
    node: Node, ctx: Context, reader: _Reader, path: Path, location: str, name: str | None, depth: int
) -> Iterator[Part]:
    """An attachment's data, extracted as a member one level below the message."""
    data = reader.read((*path, _DATA))
    blob, flags = ctx.spool(iter([data or b""]))
    del data
    child = Node(location, blob, name, depth + 1, flags=flags)
    try:
        yield from ctx.descend(child)
    finally:
        blob.close()


def _attachment_name(reader: _Reader, path: Path, codepage: str | None) -> str | None:
    """The long file name, else the short one; else, for a file (not an embedded message,
    whose display name is its subject), the display name."""
    embedded = reader.exists((*path, _EMBEDDED))
    for prop in (_LONG_NAME, _SHORT_NAME) if embedded else (_LONG_NAME, _SHORT_NAME, _DISPLAY_NAME):
        name = reader.string(path, prop, codepage)
        if name:
            return name
    return None


def _names(value: str | None) -> str | None:
    """Outlook's `;`-separated display names as a `, `-separated list."""
    if value is None:
        return None
    return ", ".join(name.strip() for name in value.split(";") if name.strip())
