"""CMS / PKCS #7 (`.p7m`, `.p7s`, S/MIME `application/pkcs7-mime` and
`application/pkcs7-signature`): the content of signed data is read, encrypted data is
flagged, and a detached signature (certificates and a signature, no content) is an
empty part without flags, so that every signed mail is not held as unreadable.

Our own bounded BER reader rather than a crypto library: we verify nothing, we only need
the encapsulated content, and S/MIME from Outlook uses BER indefinite lengths and
content cut into chunks (a constructed OCTET STRING), which this reads. Nesting and
input size are bounded; anything it cannot follow is `corrupt`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dlp.extract import mail
from dlp.extract.node import CORRUPT, ENCRYPTED, UNSUPPORTED, Context, Node
from dlp.model import Part

__all__ = ["read_cms"]

_PKCS7 = b"\x2a\x86\x48\x86\xf7\x0d\x01\x07"
_DATA = _PKCS7 + b"\x01"
_SIGNED = _PKCS7 + b"\x02"
_ENCRYPTED_TYPES = frozenset(
    (
        _PKCS7 + b"\x03",  # envelopedData
        _PKCS7 + b"\x06",  # encryptedData
        b"\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01\x17",  # authEnvelopedData (RFC 5083)
    )
)
_MAX_NESTING = 32
_MIME_HEAD = re.compile(
    rb"(?:[\x21-\x39\x3b-\x7e]+:[^\n]*\n(?:[ \t][^\n]*\n)*)*?content-type:", re.IGNORECASE
)
_P7_SUFFIX = re.compile(r"\.p7[ms]$", re.IGNORECASE)


class _Malformed(Exception):
    """The bytes are not the BER structure expected."""


def read_cms(node: Node, ctx: Context) -> Iterator[Part]:
    """The encapsulated content of signed (or plain) data, read as MIME when it is a
    MIME entity (S/MIME) and as a file `NAME` without `.p7m` otherwise; encrypted data
    is flagged `encrypted`, a detached signature is an empty part."""
    data, flags = ctx.read_capped(node)
    mime = "application/pkcs7-mime"
    try:
        kind, content = _content(data)
    except _Malformed:
        yield node.part("", (*flags, CORRUPT), mime=mime)
        return
    if kind in _ENCRYPTED_TYPES:
        yield node.part("", (*flags, ENCRYPTED), mime=mime)
        return
    if kind not in (_DATA, _SIGNED):
        yield node.part("", (*flags, UNSUPPORTED), mime=mime)
        return
    if content is None:
        yield node.part("", flags, mime="application/pkcs7-signature")
        return
    del data
    blob, spool_flags = ctx.spool(iter([content]))
    del content
    try:
        head = blob.head(8192)
        child_flags = tuple(sorted({*node.flags, *flags, *spool_flags}))
        if _MIME_HEAD.match(head.replace(b"\r\n", b"\n")):
            child = Node(node.location, blob, node.name, node.depth + 1, "message/rfc822", None, child_flags)
            yield from mail.read_email(child, ctx)
            return
        yield node.part("", flags, mime=mime)
        name = _P7_SUFFIX.sub("", node.name or "") or "content"
        location = f"{node.location}/{name}"
        yield from ctx.descend(Node(location, blob, name, node.depth + 1, flags=child_flags))
    finally:
        blob.close()


def _content(data: bytes) -> tuple[bytes, bytes | None]:
    """(content type OID, encapsulated content or None) of a ContentInfo."""
    _, start, end, _ = _tlv(data, 0, len(data), 0)
    tag, oid_start, oid_end, position = _tlv(data, start, end, 1)
    if tag != 0x06:
        raise _Malformed
    kind = data[oid_start:oid_end]
    if position >= end or kind in _ENCRYPTED_TYPES:
        return kind, None
    tag, inner_start, inner_end, _ = _tlv(data, position, end, 1)
    if tag != 0xA0:
        raise _Malformed
    if kind == _DATA:
        return kind, _octets(data, inner_start, inner_end, 2)
    if kind != _SIGNED:
        return kind, None
    tag, start, end, _ = _tlv(data, inner_start, inner_end, 2)
    if tag != 0x30:
        raise _Malformed
    _, _, _, position = _tlv(data, start, end, 3)  # version
    _, _, _, position = _tlv(data, position, end, 3)  # digestAlgorithms
    tag, start, end, _ = _tlv(data, position, end, 3)  # encapContentInfo
    if tag != 0x30:
        raise _Malformed
    _, _, _, position = _tlv(data, start, end, 4)  # eContentType
    if position >= end:
        return kind, None
    tag, start, end, _ = _tlv(data, position, end, 4)
    if tag != 0xA0:
        raise _Malformed
    return kind, _octets(data, start, end, 5)


def _octets(data: bytes, start: int, end: int, depth: int) -> bytes:
    """The value of the OCTET STRING at `start` (primitive, or constructed in chunks)."""
    tag, value_start, value_end, _ = _tlv(data, start, end, depth)
    if tag == 0x04:
        return data[value_start:value_end]
    if tag != 0x24:
        raise _Malformed
    chunks = []
    position = value_start
    while position < value_end:
        chunks.append(_octets(data, position, value_end, depth + 1))
        _, _, _, position = _tlv(data, position, value_end, depth + 1)
    return b"".join(chunks)


def _tlv(data: bytes, position: int, limit: int, depth: int) -> tuple[int, int, int, int]:
    """(tag, value start, value end, next position) of the element at `position`; an
    indefinite length ends at the end-of-contents octets after its last child."""
    if depth > _MAX_NESTING or position + 2 > limit:
        raise _Malformed
    tag = data[position]
    if tag & 0x1F == 0x1F:
        raise _Malformed
    first = data[position + 1]
    position += 2
    if first == 0x80:
        if not tag & 0x20:
            raise _Malformed
        child = position
        while data[child : child + 2] != b"\x00\x00":
            _, _, _, child = _tlv(data, child, limit, depth + 1)
        return tag, position, child, child + 2
    if first > 0x80:
        count = first & 0x7F
        if count > 4 or position + count > limit:
            raise _Malformed
        length = int.from_bytes(data[position : position + count], "big")
        position += count
    else:
        length = first
    if position + length > limit:
        raise _Malformed
    return tag, position, position + length, position + length
