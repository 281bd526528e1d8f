"""Choosing a text encoding from a byte prefix: byte-order marks, a declared charset,
UTF-16 without a BOM (by its NUL pattern), strict UTF-8, then cp1252 as the legacy 8-bit
fallback. Decoding always replaces invalid bytes, so no input makes it fail.
"""

from __future__ import annotations

import codecs

__all__ = ["detect_encoding", "looks_like_utf16"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_ASCII_NAMES = frozenset({"ascii", "us-ascii", "ansi_x3.4-1968", "646", "unknown-8bit", "x-unknown"})


def looks_like_utf16(head: bytes) -> str | None:
    """`utf-16-le` or `utf-16-be` when most of one byte column is NUL and the other is not."""
    sample = head[: len(head) & ~1][:4096]
    if len(sample) < 8 or sample.count(0) * 5 <= len(sample):
        return None
    even = sample[0::2].count(0) / (len(sample) / 2)
    odd = sample[1::2].count(0) / (len(sample) / 2)
    if odd > 0.4 and even < 0.05:
        return "utf-16-le"
    if even > 0.4 and odd < 0.05:
        return "utf-16-be"
    return None


def detect_encoding(head: bytes, declared: str | None = None) -> str:
    """The codec name to decode a text whose first bytes are `head` with.

    A BOM wins; then a declared charset Python knows (ASCII declarations are ignored,
    since mislabelled 8-bit text is common); then UTF-16 by NUL pattern; then UTF-8 if
    the prefix is valid UTF-8; else cp1252.
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if declared:
        try:
            name = codecs.lookup(declared.strip().strip('"').lower()).name
        except (LookupError, ValueError):
            name = ""
        if name and name not in _ASCII_NAMES and "ascii" not in name:
            return name
    utf16 = looks_like_utf16(head)
    if utf16:
        return utf16
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"
