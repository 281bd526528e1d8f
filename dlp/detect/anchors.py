"""Cheap scans that find where a value could start: the engine's hot path.

Instead of one regex pass per detector, the engine asks these scans for candidate
positions and runs each detector's regex only in a small region around them:

- `classes`: the text as one byte per character naming its class (`0` ASCII digit, `s`
  separator, `A` capital, `a` small letter, `x` anything else), made once per text with
  `str.encode` and `bytes.translate` (about 1 ns per character) and shared by:
- `digit_runs`: runs of ASCII digits joined by one or two separators (space, dash, dot,
  slash, parentheses), at least `MIN_RUN` characters long: one `re` pass over the classes,
  whose literal first byte lets `re` skip to each digit at memchr speed;
- `letters_digits`: two capital letters followed by two digits (IBAN country code and
  check digits), from `bytes.find`;
- `find_all`: every occurrence of a literal ('@'), with `str.find`'s fast substring search;
- `hex_colons`: colons that start a hex-and-colon group (an IPv6 address), from `str.find`
  and one anchored match per colon (colons are sparse in text).

Scanning the text itself with `re` costs about 11 ns per character for each pattern (a
character-class first item is tried at every position): 180 us of the 1.5 ms a 10 KB mail
took. Non-ASCII characters become `?` (class `x`) one for one, so positions in the classes
are character offsets in the text.
"""

from __future__ import annotations

import re

__all__ = ["MIN_RUN", "classes", "digit_runs", "find_all", "hex_colons", "letters_digits"]

MIN_RUN = 6

_CLASS_TABLE = bytearray(b"x" * 256)
for _byte in b"0123456789":
    _CLASS_TABLE[_byte] = ord("0")
for _byte in b" -./()":
    _CLASS_TABLE[_byte] = ord("s")
for _byte in range(ord("A"), ord("Z") + 1):
    _CLASS_TABLE[_byte] = ord("A")
for _byte in range(ord("a"), ord("z") + 1):
    _CLASS_TABLE[_byte] = ord("a")
_CLASSES = bytes(_CLASS_TABLE)
_WORD_CLASSES = b"Aa0"

_RUN_RE = re.compile(rb"0(?=[0s]{5})0*(?:s{1,2}0+)*")
# A colon, up to four hex digits and another colon: "2001:db8:...", "fe80::1", "::1".
_HEX_COLON_RE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX = frozenset("0123456789abcdefABCDEF:")


def classes(text: str) -> bytes:
    """One byte per character of `text` naming its class (see the module docstring)."""
    return text.encode("ascii", "replace").translate(_CLASSES)


def digit_runs(kinds: bytes) -> list[tuple[int, int]]:
    """(start, end) of every run of digits joined by one or two separators, `MIN_RUN`+ long,
    in the `classes` of a text."""
    return [m.span() for m in _RUN_RE.finditer(kinds) if m.end() - m.start() >= MIN_RUN]


def letters_digits(kinds: bytes) -> list[int]:
    """Start of every two capitals and two digits not preceded by a letter or digit, in the
    `classes` of a text."""
    out = []
    find = kinds.find
    pos = find(b"AA00")
    while pos >= 0:
        if pos == 0 or kinds[pos - 1] not in _WORD_CLASSES:
            out.append(pos)
        pos = find(b"AA00", pos + 1)
    return out


def find_all(text: str, literal: str) -> list[int]:
    """Every start offset of `literal` in `text` (overlaps allowed)."""
    out = []
    find = text.find
    pos = find(literal)
    while pos >= 0:
        out.append(pos)
        pos = find(literal, pos + 1)
    return out


def hex_colons(text: str) -> list[int]:
    """Every colon followed by up to four hex digits and another colon, with a hex digit, a
    colon or nothing word-like before it: where an IPv6 address may be (times such as
    "10:30:00" are candidates too; the validator drops them)."""
    out = []
    find, match = text.find, _HEX_COLON_RE.match
    pos = find(":")
    while pos >= 0:
        before = text[pos - 1] if pos else ":"
        if match(text, pos) is not None and (before in _HEX or not before.isalnum()):
            out.append(pos)
        pos = find(":", pos + 1)
    return out
