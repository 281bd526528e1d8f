"""Cheap scans that find where a value could start: the engine's hot path.

Instead of one regex pass per detector, the engine asks these scans for candidate
positions and runs each detector's regex only in a small region around them:

- `digit_runs`: runs of ASCII digits joined by one or two separators (space, dash, dot,
  slash, parentheses), at least `MIN_RUN` characters long;
- `letters_digits`: two capital letters followed by two digits (IBAN country code and
  check digits);
- `find_all`: every occurrence of a literal ('@'), with `str.find`'s fast substring search;
- `hex_colons`: colons that start a hex-and-colon group (an IPv6 address), from `str.find`
  and one anchored match per colon (colons are sparse in text).

Small texts are scanned with one stdlib `re` pass each (low fixed cost); large texts with
numpy over the text's code points (one byte per character for ASCII text, four
otherwise), which runs several times faster per byte. Both give the same positions, as
character offsets into the original string.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_RUN", "NUMPY_FROM", "digit_runs", "find_all", "hex_colons", "letters_digits"]

MIN_RUN = 6
NUMPY_FROM = 16 * 1024

_RUN_RE = re.compile(r"[0-9](?=[0-9 \-./()]{5})[0-9]*(?:[ \-./()]{1,2}[0-9]+)*")
_LETTERS_DIGITS_RE = re.compile(r"[A-Z][A-Z][0-9][0-9]")
# A colon, up to four hex digits and another colon: "2001:db8:...", "fe80::1", "::1".
_HEX_COLON_RE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_HEX = frozenset("0123456789abcdefABCDEF:")
_SEPARATORS = b" -./()"
_LUT = np.zeros(256, dtype=bool)
for _byte in _SEPARATORS:
    _LUT[_byte] = True

CodePoints = npt.NDArray[np.uint8] | npt.NDArray[np.uint32]


def _code_points(text: str) -> CodePoints:
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _in_range(points: CodePoints, low: int, high: int) -> npt.NDArray[np.bool_]:
    if points.dtype == np.uint8:
        return (points - np.uint8(low)) <= np.uint8(high - low)
    return (points >= low) & (points <= high)


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end offsets of the runs of True in `mask`."""
    change = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    if mask[0]:
        change = np.concatenate(([0], change))
    if mask[-1]:
        change = np.concatenate((change, [mask.shape[0]]))
    return change[0::2], change[1::2]


def digit_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of every run of digits joined by one or two separators, `MIN_RUN`+ long."""
    if len(text) < NUMPY_FROM:
        return [m.span() for m in _RUN_RE.finditer(text) if m.end() - m.start() >= MIN_RUN]
    points = _code_points(text)
    digit = _in_range(points, 48, 57)
    if points.dtype == np.uint8:
        sep = _LUT[points]
    else:
        small = points < 256
        sep = _LUT[np.where(small, points, 0).astype(np.uint8)] & small
    joined = digit.copy()
    # one separator between two digits: "415-555", "12/03"
    joined[1:-1] |= sep[1:-1] & digit[:-2] & digit[2:]
    # two separators between two digits: "(415) 555", "1 (800"
    pair = sep[1:-2] & sep[2:-1] & digit[:-3] & digit[3:]
    joined[1:-2] |= pair
    joined[2:-1] |= pair
    starts, ends = _runs(joined)
    keep = (ends - starts) >= MIN_RUN
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def letters_digits(text: str) -> list[int]:
    """Start of every `[A-Z]{2}[0-9]{2}` not preceded by a letter or digit."""
    if len(text) < NUMPY_FROM:
        return [
            m.start()
            for m in _LETTERS_DIGITS_RE.finditer(text)
            if not m.start() or not text[m.start() - 1].isalnum() or not text[m.start() - 1].isascii()
        ]
    points = _code_points(text)
    upper = _in_range(points, 65, 90)
    digit = _in_range(points, 48, 57)
    hit = upper[:-3] & upper[1:-2] & digit[2:-1] & digit[3:]
    positions = np.flatnonzero(hit)
    if positions.size == 0:
        return []
    word = upper | digit | _in_range(points, 97, 122)
    ok = (positions == 0) | ~word[np.maximum(positions - 1, 0)]
    return list(positions[ok].tolist())


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
