"""Keyword dictionaries: text files of terms (code names, product names, internal hostnames).

A dictionary is UTF-8 text, one term per line; blank lines and lines starting with `#`
are skipped, surrounding whitespace is stripped and runs of inner whitespace become one
space. Terms are lower-cased (the engine matches them case-insensitively on whole words
in its one Aho-Corasick pass) and duplicates are dropped. Errors name the file, the line
and the definition field that named the dictionary.
"""

from __future__ import annotations

from pathlib import Path

from dlp.errors import DefinitionError

__all__ = ["MAX_TERMS", "MAX_TERM_LENGTH", "MIN_TERM_LENGTH", "read_terms"]

MAX_TERMS = 1_000_000
MIN_TERM_LENGTH = 2
MAX_TERM_LENGTH = 256


def read_terms(path: Path, definition: str, line: int | None, field: str) -> tuple[str, ...]:
    """The distinct lower-cased terms of the dictionary at `path`, in file order.

    `definition`, `line` and `field` say where the dictionary was named: a file that cannot
    be read or holds no term is reported there; a bad term or one term too many is reported
    at its own line of the dictionary file.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(definition, line, field, f"dictionary '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(definition, line, field, f"cannot read dictionary '{path}': {exc}") from None
    lines = [" ".join(text.split()) for text in raw.lower().splitlines()]
    terms = dict.fromkeys(term for term in lines if term and term[0] != "#")
    if any(not MIN_TERM_LENGTH <= len(term) <= MAX_TERM_LENGTH for term in terms):
        number = next(
            number
            for number, term in enumerate(lines, start=1)
            if term and term[0] != "#" and not MIN_TERM_LENGTH <= len(term) <= MAX_TERM_LENGTH
        )
        raise DefinitionError(
            str(path),
            number,
            field,
            f"a term must have {MIN_TERM_LENGTH} to {MAX_TERM_LENGTH} characters "
            f"(dictionary of {definition})",
        )
    if len(terms) > MAX_TERMS:
        raise DefinitionError(
            str(path),
            _line_of_term(lines, MAX_TERMS + 1),
            field,
            f"more than {MAX_TERMS:,} terms (dictionary of {definition})",
        )
    if not terms:
        raise DefinitionError(
            definition, line, field, f"dictionary '{path}' has no terms (only blank lines and comments)"
        )
    return tuple(terms)


def _line_of_term(lines: list[str], count: int) -> int:
    """The line number where the `count`-th distinct term appears."""
    seen: set[str] = set()
    for number, term in enumerate(lines, start=1):
        if term and term[0] != "#" and term not in seen:
            seen.add(term)
            if len(seen) == count:
                return number
    raise ValueError(count)
