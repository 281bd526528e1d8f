"""uuencoded files inside a plain-text mail body (`uuencode report.csv report.csv | mail`,
older clients and scripts): each `begin MODE NAME` ... `end` block is decoded and read as
a file of its own at `<body location>/NAME`, so the data in it is scanned like an
attachment's. A block whose lines do not decode is flagged `corrupt`; a block without its
`end` line is decoded up to the first line that is not uuencoded and flagged `truncated`.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

__all__ = ["UU_MARK", "uu_files"]

UU_MARK = b"begin "
_BEGIN = re.compile(rb"^begin [0-7]{3,4} ([^\r\n]{1,512})\r?$", re.MULTILINE)
_END = re.compile(rb"^end\r?$", re.MULTILINE)


def uu_files(data: bytes) -> Iterator[tuple[str, bytes, bool, bool]]:
    """(name, decoded bytes, damaged, cut short) of every uuencoded block in `data`."""
    position = 0
    while (begin := _BEGIN.search(data, position)) is not None:
        end = _END.search(data, begin.end())
        stop = end.start() if end is not None else len(data)
        decoded, damaged = _decode(data[begin.end() : stop])
        name = begin.group(1).decode("utf-8", "replace").strip()
        # without its `end` the block runs into the text after it: the data just stops there
        yield name, decoded, damaged and end is not None, end is None
        position = end.end() if end is not None else len(data)


def _decode(block: bytes) -> tuple[bytes, bool]:
    out = bytearray()
    for line in block.splitlines():
        if not line or line in (b"`", b" "):
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            try:  # some encoders pad lines short or long: decode what the length byte says
                count = (line[0] - 32) & 63
                out += binascii.a2b_uu(line[: 1 + (count * 4 + 2) // 3])
            except (binascii.Error, IndexError):
                return bytes(out), True
    return bytes(out), False
