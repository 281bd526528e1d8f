"""Cheap, vectorised scans that find where a value could start: the engine's hot path.

Instead of one regex pass per detector, the engine asks these scans for candidate
positions and runs each detector's regex only in a small region around them:

- `digit_runs`: runs of ASCII digits joined by at most two separators (space, dash,
  dot, slash, parentheses) between digits, at least `MIN_RUN` characters long;
- `letters_digits`: two capital letters followed by two digits (IBAN country code and
  check digits);
- `find_all`: every occurrence of a literal (key prefixes, '@'), with `str.find`, which
  uses a fast substring search.

The scans run in numpy over the text's code points (one byte per character for ASCII
text, four otherwise), so offsets are character offsets into the original string.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_RUN", "code_points", "digit_runs", "find_all", "letters_digits"]

MIN_RUN = 6
_SEPARATORS = b" -./()"
_LUT = np.zeros(256, dtype=bool)
for _byte in _SEPARATORS:
    _LUT[_byte] = True

CodePoints = npt.NDArray[np.uint8] | npt.NDArray[np.uint32]


def code_points(text: str) -> CodePoints:
    """The text as an array with one element per character (no copy of ASCII text's bytes)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _separators(points: CodePoints) -> npt.NDArray[np.bool_]:
    if points.dtype == np.uint8:
        return _LUT[points]
    small = points < 256
    return _LUT[np.where(small, points, 0).astype(np.uint8)] & small


def digit_runs(points: CodePoints) -> list[tuple[int, int]]:
    """(start, end) of every run of digits joined by one or two separators, `MIN_RUN`+ long."""
    n = points.shape[0]
    if n < MIN_RUN:
        return []
    digit = (points - 48) < 10 if points.dtype == np.uint8 else (points >= 48) & (points <= 57)
    if not digit.any():
        return []
    sep = _separators(points)
    joined = digit.copy()
    # one separator between two digits: "415-555", "12/03"
    joined[1:-1] |= sep[1:-1] & digit[:-2] & digit[2:]
    # two separators between two digits: "(415) 555", "1 (800"
    if n > 3:
        pair = sep[1:-2] & sep[2:-1] & digit[:-3] & digit[3:]
        joined[1:-2] |= pair
        joined[2:-1] |= pair
    edges = np.flatnonzero(np.diff(joined.view(np.int8), prepend=0, append=0))
    starts = edges[0::2]
    ends = edges[1::2]
    keep = (ends - starts) >= MIN_RUN
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def letters_digits(points: CodePoints) -> list[int]:
    """Start of every `[A-Z]{2}[0-9]{2}` not preceded by a letter or digit."""
    n = points.shape[0]
    if n < 4:
        return []
    upper = (points - 65) < 26 if points.dtype == np.uint8 else (points >= 65) & (points <= 90)
    digit = (points - 48) < 10 if points.dtype == np.uint8 else (points >= 48) & (points <= 57)
    hit = upper[:-3] & upper[1:-2] & digit[2:-1] & digit[3:]
    positions = np.flatnonzero(hit)
    if positions.size == 0:
        return []
    lower = (points - 97) < 26 if points.dtype == np.uint8 else (points >= 97) & (points <= 122)
    word = upper | lower | digit
    prev = positions - 1
    ok = (positions == 0) | ~word[np.maximum(prev, 0)]
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
