"""PowerPoint 97-2003 presentations (.ppt, [MS-PPT]): the text of the `PowerPoint
Document` stream's records.

The stream is a sequence of records, each with an 8-byte header (recVer and recInstance
in a u16, recType u16, recLen u32); a record with recVer 0xF is a container whose body
is more records, walked into. The text is in atoms: TextCharsAtom (UTF-16LE) and
TextBytesAtom (8-bit, each byte the low byte of a UTF-16 code unit, i.e. Latin-1) for
the text of slides, notes, masters and text boxes, CString (UTF-16LE) for comments,
slide names and hyperlinks. They are read in stream order, one line each, with
PowerPoint's paragraph and line breaks as newlines.

The walk reads each byte of the stream at most once, so it yields no more characters
than the stream has bytes (the caller bounds the stream by the per-member limit). It
stops with `PptDamaged` (the caller flags what was read `corrupt`) at a record longer
than what is left of its container, a header cut short, or containers nested deeper
than `MAX_DEPTH`; a CryptSession10Container record raises `PptEncrypted` (an
encrypted presentation's other records are unreadable). `check` is called at every
record (the caller's time limit).

catppt (catdoc) is GPL-2.0 and a program, not a library; ppt2txt on PyPI has one
release, pins olefile and reads the stream as a hex string: the few records needed
are walked here.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

__all__ = ["MAX_DEPTH", "PptDamaged", "PptEncrypted", "is_encrypted_user", "texts"]

MAX_DEPTH = 32
_HEADER = struct.Struct("<HHL")
_CONTAINER = 0xF
_TEXT_CHARS = 0x0FA0
_TEXT_BYTES = 0x0FA8
_CSTRING = 0x0FBA
_CRYPT_SESSION = 0x2F14
_CURRENT_USER = 0x0FF6
_ENCRYPTED_TOKEN = 0xF3D1C4DF
_BREAKS = {
    **{code: None for code in range(32) if code not in (9, 10, 11, 13)},
    0x0B: "\n",
    0x0D: "\n",
}


class PptDamaged(Exception):
    """The record structure of the stream is broken where reading stopped."""


class PptEncrypted(Exception):
    """The presentation is password-protected (a CryptSession10Container record)."""


def is_encrypted_user(current_user: bytes) -> bool:
    """Whether a `Current User` stream marks its presentation encrypted: its
    CurrentUserAtom's headerToken is 0xF3D1C4DF instead of 0xE391C05F ([MS-PPT]
    2.3.2), which a reader must see before the encrypted records it cannot walk."""
    if len(current_user) < 16:
        return False
    _, kind, _ = _HEADER.unpack_from(current_user, 0)
    (token,) = struct.unpack_from("<L", current_user, 12)
    return bool(kind == _CURRENT_USER and token == _ENCRYPTED_TOKEN)


def texts(document: bytes, check: Callable[[], None]) -> Iterator[str]:
    """Each text atom's text of a `PowerPoint Document` stream, in stream order, as a
    line of plain text; raises `PptDamaged` or `PptEncrypted` where the walk stops."""
    position = 0
    ends = [len(document)]
    while position < len(document):
        check()
        while position >= ends[-1]:
            ends.pop()
        end = ends[-1]
        if position + _HEADER.size > end:
            raise PptDamaged("record header cut short")
        version_instance, kind, length = _HEADER.unpack_from(document, position)
        position += _HEADER.size
        if length > end - position:
            raise PptDamaged("record longer than its container")
        if kind == _CRYPT_SESSION:
            raise PptEncrypted()
        if version_instance & 0xF == _CONTAINER:
            if len(ends) > MAX_DEPTH:
                raise PptDamaged("containers nested too deep")
            ends.append(position + length)
            continue
        body = document[position : position + length]
        position += length
        if kind in (_TEXT_CHARS, _CSTRING):
            line = body.decode("utf-16-le", "replace")
        elif kind == _TEXT_BYTES:
            line = body.decode("latin-1")
        else:
            continue
        line = line.translate(_BREAKS)
        if line:
            yield line + "\n"
