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
- `hex_colons`: the first colon of each hex-and-colon run shaped like an IPv6 address
  ("::" or seven colons), from `str.find` and one anchored match per run.

Scanning the text itself with `re` costs about 11 ns per character for each pattern (a
character-class first item is tried at every position): 180 us of the 1.5 ms a 10 KB mail
took. Non-ASCII characters become `?` (class `x`) one for one, so positions in the classes
are character offsets in the text.
"""

from __future__ import annotations

import re

__all__ = ["DIGIT", "MIN_RUN", "classes", "digit_runs", "find_all", "hex_colons", "letters_digits"]

MIN_RUN = 6
DIGIT = ord("0")
"""The class byte of an ASCII digit: `classes(text).count(DIGIT, start, end)` is how many
digits text[start:end] holds."""

_CLASS_TABLE = bytearray(b"x" * 256)
for _byte in b"0123456789":
    _CLASS_TABLE[_byte] = DIGIT
for _byte in b" -./()":
    _CLASS_TABLE[_byte] = ord("s")
for _byte in range(ord("A"), ord("Z") + 1):
    _CLASS_TABLE[_byte] = ord("A")
for _byte in range(ord("a"), ord("z") + 1):
    _CLASS_TABLE[_byte] = ord("a")
_CLASSES = bytes(_CLASS_TABLE)
_WORD_CLASSES = b"Aa0"

# Possessive: no backtracking is ever needed here, and without it the regular-expression
# engine kept state for each group of a run (372 MB for a 4-MB text of "1 2 1 2 ...").
_RUN_RE = re.compile(rb"0(?=[0s]{5})0*+(?:s{1,2}+0++)*+")
# A run of hex digits and colons as long as an IPv6 address can be ("2001:db8::1", "::1").
_HEX_RUN_RE = re.compile(r"[0-9A-Fa-f:]{2,45}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX = _HEX_DIGITS | {":"}


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
    """The first colon of every run of hex digits and colons that can be an IPv6 address:
    one holding "::" or at least seven colons, with no letter other than a hex digit right
    before it. Times ("10:30:00") and ratios never qualify, so a log file with a timestamp
    on every line costs one `str.find` and one match per line."""
    out = []
    find, run_at = text.find, _HEX_RUN_RE.match
    pos = find(":")
    while pos >= 0:
        start = pos
        while start > 0 and pos - start < 4 and text[start - 1] in _HEX_DIGITS:
            start -= 1
        before = text[start - 1] if start else " "
        run = run_at(text, start)
        end = pos + 1
        if run is not None:
            end = run.end()
            value = run.group()
            if (before in _HEX or not before.isalnum()) and ("::" in value or value.count(":") >= 7):
                out.append(pos)
        pos = find(":", end)
    return out
