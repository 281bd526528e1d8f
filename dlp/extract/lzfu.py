"""Compressed RTF ([MS-OXRTFCP]), the form of an Outlook item's RTF body
(`PR_RTF_COMPRESSED`): a 16-byte header (compressed size, raw size, `LZFu` or `MELA`,
CRC-32) then either LZ77 runs over a 4096-byte dictionary that starts with a fixed
207-byte RTF prebuffer, or (`MELA`) the RTF as is.

Our own rather than the `compressed-rtf` package (MIT, pure Python): it decodes the
whole body into memory one byte at a time with no bound on the output, no way to check
the item's deadline and a byte-at-a-time CRC, about 1 MB/s here. Here the output comes
in blocks (so `Context.spool` bounds its size and time), stops at the declared raw
size, and the CRC is zlib's.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

__all__ = ["decompress"]

_PREBUFFER = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript "
    b"\\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par "
    b"\\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_WINDOW = 4096
_BLOCK = 64 * 1024


def decompress(data: bytes) -> Iterator[bytes]:
    """The RTF in blocks, at most the header's raw size in all. Raises `ValueError`,
    after every block it could decode, when the stream is damaged: a short or unknown
    header, contents shorter than the header says, a CRC that does not match, or
    compressed data that ends before its end marker and the raw size."""
    if len(data) < 16:
        raise ValueError("compressed RTF header is short")
    size, raw_size, kind, crc = struct.unpack_from("<II4sI", data)
    contents = data[16 : 4 + size]
    if kind == b"MELA":
        for start in range(0, min(raw_size, len(contents)), _BLOCK):
            yield contents[start : min(start + _BLOCK, raw_size)]
        if crc != 0 or len(contents) < raw_size:
            raise ValueError("uncompressed RTF is damaged")
        return
    if kind != b"LZFu":
        raise ValueError("unknown RTF compression")
    intact = size >= 12 and 4 + size <= len(data) and zlib.crc32(contents, 0xFFFFFFFF) ^ 0xFFFFFFFF == crc
    window = bytearray(_PREBUFFER.ljust(_WINDOW, b"\0"))
    write = len(_PREBUFFER)
    out = bytearray()
    left = raw_size
    position = 0
    ended = False
    while left > 0 and not ended and position < len(contents):
        control = contents[position]
        position += 1
        for bit in range(8):
            if left <= 0 or position >= len(contents):
                break
            if not control >> bit & 1:
                window[write] = contents[position]
                out.append(contents[position])
                write = (write + 1) % _WINDOW
                position += 1
                left -= 1
                continue
            if position + 2 > len(contents):
                position = len(contents)
                break
            token = contents[position] << 8 | contents[position + 1]
            position += 2
            offset = token >> 4
            if offset == write:
                ended = True
                break
            length = min((token & 0xF) + 2, left)
            end = offset + length
            if end <= _WINDOW and write + length <= _WINDOW:
                run = window[offset:write] if offset < write < end else window[offset:end]
                run = (run * (length // len(run) + 1))[:length]
                window[write : write + length] = run
                out += run
                write = (write + length) % _WINDOW
            else:
                for step in range(length):
                    window[write] = window[(offset + step) % _WINDOW]
                    out.append(window[write])
                    write = (write + 1) % _WINDOW
            left -= length
        if len(out) >= _BLOCK:
            yield bytes(out)
            out.clear()
    yield bytes(out)
    if not intact or (not ended and left > 0):
        raise ValueError("compressed RTF is damaged")
