"""Header edits on the raw message bytes: drop inbound `X-DLP-*` fields, add ours.

The message is never re-serialised with the `email` package (that rewrites folding,
encodings and line ends): only the header lines named `X-DLP-*` (with their
continuation lines) are cut out and our fields are prepended. Every other byte stays as
received. Line ends follow what the next hop will see: CRLF, a lone LF or a lone CR all
end a line (aiosmtplib turns lone ones into CRLF when it sends).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["HEADER_PREFIX", "rewrite_headers"]

HEADER_PREFIX = b"x-dlp-"
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|\Z)")


def rewrite_headers(message: bytes, add: Sequence[tuple[str, str]] = ()) -> bytes:
    """Return `message` without `X-DLP-*` header fields and with `add` prepended."""
    kept: list[bytes] = []
    dropping = False
    position = 0
    changed = False
    for match in _LINE.finditer(message):
        line = match.group()
        if not line.rstrip(b"\r\n"):
            break
        if line[:1] not in (b" ", b"\t"):
            dropping = line.split(b":", 1)[0].strip().lower().startswith(HEADER_PREFIX)
        if dropping:
            changed = True
        else:
            kept.append(line)
        position = match.end()
        if position >= len(message):
            break
    added = b"".join(f"{name}: {value}\r\n".encode("ascii") for name, value in add)
    if not changed:
        return added + message if added else message
    return added + b"".join(kept) + message[position:]
