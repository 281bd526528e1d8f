"""Outlook's TNEF ([MS-OXTNEF], `winmail.dat`, `application/ms-tnef`): the part in which
Exchange and Outlook send "rich text" mail, its bodies and attachments wrapped together.

The stream is a signature (`78 9F 3E 22`), a 16-bit key, then attributes: a level byte
(1 message, 2 attachment), a 32-bit id, a 32-bit length, the data and a 16-bit checksum.
Read here: `attBody` (plain text in the OEM code page), `attMAPIProps` (the message's
MAPI properties: `PR_BODY`, `PR_HTML` and `PR_RTF_COMPRESSED`, see `dlp.extract.lzfu`),
`attAttachRendData` (starts an attachment), `attAttachTitle` (its 8-bit name),
`attAttachData` (its bytes) and `attAttachment` (its MAPI properties: the long file
name, and the data when `attAttachData` is absent; an embedded message's data is TNEF
again and is read as such).

Parts, under the winmail.dat part's own location, as for an Outlook item (.msg): an
empty part carrying the flags, `body[N]` (the plain body, then the HTML one; the RTF
body at `body[1]` when there is neither) and `attachment[N]:NAME` (the long name, else
the title, else `unnamed`), each extracted one level deeper.

Bounds: every length is checked against the bytes left; an attribute that runs past the
end, or a property list that cannot be followed, stops reading there with `corrupt` and
keeps what was read (a cut `attAttachData` keeps its bytes, flagged `truncated`).
Attachment data is spooled straight from the input under the member, total, ratio and
time limits; other attributes are read into memory only up to the per-member limit
(larger ones are skipped and flag the part `limit:size`). Checksums are not verified:
lengths are, and a wrong sum over data that is still read would add nothing.

tnefparse was not taken: it is LGPL and reads every attribute into memory unbounded.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dlp.extract import documents, lzfu, text
from dlp.extract.members import location_segment
from dlp.extract.node import BLOCK, CORRUPT, LIMIT_SIZE, Blob, Context, Node
from dlp.model import Part

__all__ = ["TNEF_MIME", "TNEF_SIGNATURE", "read_tnef"]

TNEF_MIME = "application/ms-tnef"
TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
_MESSAGE, _ATTACHMENT = 1, 2
_ATT_BODY = 0x0001800C
_ATT_TITLE = 0x00018010
_ATT_DATA = 0x0006800F
_ATT_REND = 0x00069002
_ATT_MAPI = 0x00069003
_ATT_PROPS = 0x00069005
_ATT_CODEPAGE = 0x00069007
_READ = frozenset((_ATT_BODY, _ATT_TITLE, _ATT_REND, _ATT_MAPI, _ATT_PROPS, _ATT_CODEPAGE))
_HEADER = struct.Struct("<BII")
_CHECKSUM = 2
_PR_BODY, _PR_HTML, _PR_RTF = 0x1000, 0x1013, 0x1009
_PR_LONG_NAME, _PR_DATA = 0x3707, 0x3701
_PT_STRING8, _PT_UNICODE, _PT_BINARY, _PT_OBJECT = 0x001E, 0x001F, 0x0102, 0x000D
_CODEPAGE_TAGS = (0x3FFD0003, 0x3FDE0003)  # PR_MESSAGE_CODEPAGE, PR_INTERNET_CPID
_MULTIPLE = 0x1000
_FIXED = {0x0002: 4, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000A: 4, 0x000B: 4,
          0x0014: 8, 0x0040: 8, 0x0048: 16}  # fmt: skip
_VARIABLE = frozenset((_PT_STRING8, _PT_UNICODE, _PT_BINARY, _PT_OBJECT))
_IID = 16

Reader = Callable[[Node, Context], Iterator[Part]]
Record = tuple[int, int, int, int]
"""An attribute: level, id, offset of its data, length (cut to the bytes left)."""


class _Damaged(Exception):
    """A property list that cannot be followed."""


def read_tnef(node: Node, ctx: Context) -> Iterator[Part]:
    """The bodies and attachments of a TNEF stream (see the module docstring)."""
    survey = _Records(node.blob, ctx)
    oversized = any(ident in _READ and length > ctx.limits.max_member_bytes for _, ident, _, length in survey)
    flags = tuple(flag for flag, hit in ((CORRUPT, survey.damaged), (LIMIT_SIZE, oversized)) if hit)
    yield node.part("", flags, mime=TNEF_MIME)
    reader = _Reader(node, ctx)
    try:
        yield from reader.read(_Records(node.blob, ctx))
    finally:
        reader.close()
    if reader.damaged:
        yield node.part("", (CORRUPT,), mime=TNEF_MIME)


class _Records:
    """The attributes of a TNEF stream, in order; stops at the first that runs past the
    end (`damaged`), except attachment data, which is kept cut to the bytes left."""

    def __init__(self, blob: Blob, ctx: Context) -> None:
        self.blob = blob
        self.ctx = ctx
        self.damaged = False

    def __iter__(self) -> Iterator[Record]:
        stream = self.blob.stream
        stream.seek(0)
        if stream.read(4) != TNEF_SIGNATURE or len(stream.read(2)) != 2:
            self.damaged = True
            return
        at = 6
        while at < self.blob.size:
            self.ctx.check_time()
            stream.seek(at)
            header = stream.read(_HEADER.size)
            if len(header) < _HEADER.size:
                self.damaged = True
                return
            level, ident, length = _HEADER.unpack(header)
            start = at + _HEADER.size
            left = self.blob.size - start
            if length + _CHECKSUM > left:
                self.damaged = True
                if ident == _ATT_DATA and level == _ATTACHMENT:
                    yield level, ident, start, min(length, left)
                return
            yield level, ident, start, length
            at = start + length + _CHECKSUM


@dataclass
class _Attachment:
    """What is known so far of the attachment being read."""

    title: str | None = None
    long_name: str | None = None
    blob: Blob | None = None
    flags: tuple[str, ...] = ()


class _Reader:
    """Turns the attributes into parts, one attachment held at a time."""

    def __init__(self, node: Node, ctx: Context) -> None:
        self.node = node
        self.ctx = ctx
        self.base = node.location
        self.depth = node.depth
        self.codepage = "cp1252"
        self.bodies = 0
        self.plain = False
        self.attachments = 0
        self.pending: _Attachment | None = None
        self.damaged = False

    def read(self, records: _Records) -> Iterator[Part]:
        """Every part, in the order the attributes come; the last attachment at the end."""
        for level, ident, offset, length in records:
            if ident == _ATT_DATA and level == _ATTACHMENT:
                if self.pending is not None and self.pending.blob is not None:
                    yield from self.finish()
                pending = self.attachment()
                pending.blob, pending.flags = self.spool(offset, length, records)
                continue
            if ident not in _READ or length > self.ctx.limits.max_member_bytes:
                continue
            if ident == _ATT_REND and level == _ATTACHMENT:
                yield from self.finish()
                self.pending = _Attachment()
                continue
            data = self.data(offset, length)
            if ident == _ATT_CODEPAGE and length >= 4:
                self.codepage = _charset(int.from_bytes(data[:4], "little")) or self.codepage
            elif level == _MESSAGE and ident == _ATT_BODY:
                self.plain = True
                yield from self.text_body(data.rstrip(b"\0"), self.codepage)
            elif level == _MESSAGE and ident == _ATT_MAPI:
                yield from self.message_properties(data)
            elif level == _ATTACHMENT and ident == _ATT_TITLE:
                self.attachment().title = _string(data, self.codepage)
            elif level == _ATTACHMENT and ident == _ATT_PROPS:
                self.attachment_properties(data)
        yield from self.finish()

    def data(self, offset: int, length: int) -> bytes:
        stream = self.node.blob.stream
        stream.seek(offset)
        return stream.read(length)

    def spool(self, offset: int, length: int, records: _Records) -> tuple[Blob, tuple[str, ...]]:
        """Attachment data copied from the input under the limits; a cut one is `truncated`."""
        stream = self.node.blob.stream

        def blocks() -> Iterator[bytes]:
            left = length
            while left > 0:
                stream.seek(offset + length - left)
                block = stream.read(min(BLOCK, left))
                if not block:
                    return
                left -= len(block)
                yield block

        declared = length
        if records.damaged:
            stream.seek(offset - 4)
            declared = int.from_bytes(stream.read(4), "little")
        return self.ctx.spool(blocks(), declared=declared)

    def attachment(self) -> _Attachment:
        """The attachment being read (attributes before any `attAttachRendData` start one)."""
        if self.pending is None:
            self.pending = _Attachment()
        return self.pending

    def finish(self) -> Iterator[Part]:
        """Extract the pending attachment, if any, one level below the message."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        blob = pending.blob or Blob.of_bytes(b"")
        try:
            self.ctx.count_file()
            self.attachments += 1
            name = pending.long_name or pending.title
            location = f"{self.base}/attachment[{self.attachments}]:{location_segment(name or 'unnamed')}"
            yield from self.ctx.descend(Node(location, blob, name, self.depth + 1, flags=pending.flags))
        finally:
            blob.close()

    def close(self) -> None:
        """Release the pending attachment's spool (when reading stopped early)."""
        if self.pending is not None and self.pending.blob is not None:
            self.pending.blob.close()

    def message_properties(self, data: bytes) -> Iterator[Part]:
        """The plain body (unless `attBody` gave it), the HTML body, and the RTF body
        when there is neither."""
        wanted = {
            _PR_BODY << 16 | _PT_STRING8,
            _PR_BODY << 16 | _PT_UNICODE,
            _PR_HTML << 16 | _PT_BINARY,
            _PR_RTF << 16 | _PT_BINARY,
            *_CODEPAGE_TAGS,
        }
        found = self.properties(data, wanted)
        for tag in _CODEPAGE_TAGS:
            if tag in found:
                self.codepage = _charset(int.from_bytes(found[tag][:4], "little")) or self.codepage
                break
        unicode, eight_bit = found.get(_PR_BODY << 16 | _PT_UNICODE), found.get(_PR_BODY << 16 | _PT_STRING8)
        html, rtf = found.get(_PR_HTML << 16 | _PT_BINARY), found.get(_PR_RTF << 16 | _PT_BINARY)
        if not self.plain and unicode is not None:
            self.plain = True
            yield from self.text_body(_strip_utf16(unicode), "utf-16-le")
        elif not self.plain and eight_bit is not None:
            self.plain = True
            yield from self.text_body(eight_bit.rstrip(b"\0"), self.codepage)
        if html is not None:
            yield from self.body(iter([html]), "text/html", self.codepage, text.read_html)
        elif rtf is not None and not self.plain:
            yield from self.body(lzfu.decompress(rtf), "text/rtf", None, documents.read_rtf)

    def text_body(self, data: bytes, charset: str) -> Iterator[Part]:
        """A plain-text body at the next `body[N]`."""

        def read(child: Node, ctx: Context) -> Iterator[Part]:
            return text.text_parts(child, text.decoded_blocks(child, ctx), mime="text/plain")

        yield from self.body(iter([data]), "text/plain", charset, read)

    def body(self, blocks: Iterator[bytes], mime: str, charset: str | None, read: Reader) -> Iterator[Part]:
        """`blocks` spooled under the limits and read by `read` at the next `body[N]`."""
        self.bodies += 1
        location = f"{self.base}/body[{self.bodies}]"
        yield from self.ctx.read_spooled(blocks, location, self.depth + 1, mime, charset, read)

    def attachment_properties(self, data: bytes) -> None:
        """The long file name, and the data when `attAttachData` gave none (an embedded
        message's, after its 16-byte interface id, is TNEF)."""
        wanted = {
            _PR_LONG_NAME << 16 | _PT_STRING8,
            _PR_LONG_NAME << 16 | _PT_UNICODE,
            _PR_DATA << 16 | _PT_BINARY,
            _PR_DATA << 16 | _PT_OBJECT,
        }
        found = self.properties(data, wanted)
        pending = self.attachment()
        unicode, eight_bit = (
            found.get(_PR_LONG_NAME << 16 | _PT_UNICODE),
            found.get(_PR_LONG_NAME << 16 | _PT_STRING8),
        )
        if unicode is not None:
            pending.long_name = _strip_utf16(unicode).decode("utf-16-le", "replace") or None
        elif eight_bit is not None:
            pending.long_name = _string(eight_bit, self.codepage)
        binary, embedded = found.get(_PR_DATA << 16 | _PT_BINARY), found.get(_PR_DATA << 16 | _PT_OBJECT)
        content = binary if binary is not None else None if embedded is None else embedded[_IID:]
        if pending.blob is None and content is not None:
            pending.blob, pending.flags = self.ctx.spool(iter([content]))

    def properties(self, data: bytes, wanted: set[int]) -> dict[int, bytes]:
        """The first value of each `wanted` property tag in a MAPI property list; one
        that cannot be followed marks the item `damaged` and keeps what was found."""
        found: dict[int, bytes] = {}
        try:
            _property_list(data, wanted, found, self.ctx)
        except (_Damaged, struct.error):
            self.damaged = True
        return found


def _property_list(data: bytes, wanted: set[int], found: dict[int, bytes], ctx: Context) -> None:
    """Fill `found` from a MAPI property list ([MS-OXTNEF] 2.1.3.4): a count, then each
    property's tag, its name when it is a named one (id 0x8000 and up), and its values
    (a count first for multi-valued and variable-size types), padded to 4 bytes."""
    (count,) = struct.unpack_from("<I", data, 0)
    at = 4
    for _ in range(count):
        ctx.check_time()
        if at >= len(data):
            raise _Damaged
        (tag,) = struct.unpack_from("<I", data, at)
        at += 4
        kind, ident = tag & 0xFFFF, tag >> 16
        if ident >= 0x8000:
            (name_kind,) = struct.unpack_from("<I", data, at + 16)
            at += 20
            if name_kind != 0:
                (size,) = struct.unpack_from("<I", data, at)
                at += 4 + _padded(size)
            else:
                at += 4
        single = kind & ~_MULTIPLE
        values = 1
        if kind & _MULTIPLE or single in _VARIABLE:
            (values,) = struct.unpack_from("<I", data, at)
            at += 4
        if single not in _VARIABLE and single not in _FIXED:
            raise _Damaged
        if values * 4 > len(data) - at:
            raise _Damaged
        for _ in range(values):
            if single in _VARIABLE:
                (size,) = struct.unpack_from("<I", data, at)
                at += 4
            else:
                size = _FIXED[single]
            if at + size > len(data):
                raise _Damaged
            if tag in wanted and tag not in found:
                found[tag] = data[at : at + size]
            at += _padded(size)


def _padded(size: int) -> int:
    return size + -size % 4


def _strip_utf16(data: bytes) -> bytes:
    """UTF-16LE text without its terminating NULs (and an odd last byte)."""
    data = data[: len(data) // 2 * 2]
    while data.endswith(b"\0\0"):
        data = data[:-2]
    return data


def _string(data: bytes, codepage: str) -> str | None:
    """An 8-bit NUL-terminated string, decoded; None when empty."""
    return data.split(b"\0", 1)[0].decode(codepage, "replace") or None


def _charset(codepage: int) -> str | None:
    """The Python codec for a Windows code page number, None when unknown."""
    try:
        return codecs.lookup("utf-8" if codepage == 65001 else f"cp{codepage}").name
    except LookupError:
        return None
