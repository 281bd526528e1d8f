"""Small typed readers for policy YAML values that collect every problem with its place.

A `Problems` list gathers errors (file, line, field, message) instead of stopping at the
first, so `dlp policy check` can show them all. Each reader returns `None` after
recording a problem; callers carry on with the next field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dlp.errors import PolicyError
from dlp.policy.source import LineMap

__all__ = ["Place", "Problems", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclass
class Problems:
    """The errors found in one or more policy files, in the order found."""

    errors: list[PolicyError] = field(default_factory=list)

    def add(self, file: str, line: int | None, name: str | None, message: str) -> None:
        """Record one error."""
        self.errors.append(PolicyError(file, line, name, message))


@dataclass(frozen=True)
class Place:
    """Where a value sits: file, line and dotted field path; reports problems there."""

    file: str
    line: int
    path: str
    problems: Problems

    def child(self, key: str, line: int | None = None) -> Place:
        """The place of a field below this one."""
        path = f"{self.path}.{key}" if self.path and not key.startswith("[") else self.path + key
        return Place(self.file, line if line is not None else self.line, path, self.problems)

    def key(self, mapping: LineMap, key: str) -> Place:
        """The place of `key` inside `mapping` (its own line)."""
        return self.child(key, mapping.line_of(key))

    def error(self, message: str) -> None:
        """Record a problem at this place."""
        self.problems.add(self.file, self.line, self.path or None, message)

    def mapping(self, value: Any, allowed: Sequence[str], required: Sequence[str] = ()) -> LineMap | None:
        """`value` as a mapping with only `allowed` keys and every `required` key."""
        if not isinstance(value, LineMap):
            self.error(f"expected a mapping, got {_kind(value)}")
            return None
        ok = True
        for key, line in value.duplicates:
            self.child(key, line).error("duplicate key")
            ok = False
        for key in value:
            if key not in allowed:
                self.key(value, key).error(f"unknown key; expected one of: {', '.join(allowed)}")
                ok = False
        for key in required:
            if key not in value:
                self.error(f"missing required key '{key}'")
                ok = False
        return value if ok else None

    def text(self, value: Any) -> str | None:
        """A non-empty string."""
        if isinstance(value, str) and value.strip():
            return value.strip()
        self.error(f"expected a non-empty string, got {_kind(value)}")
        return None

    def texts(self, value: Any, allow_empty: bool = False) -> tuple[str, ...] | None:
        """A string or a list of non-empty strings (an empty list only if allowed)."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not (items or allow_empty):
            self.error(f"expected a string or a non-empty list of strings, got {_kind(value)}")
            return None
        out = []
        for index, item in enumerate(items):
            if not isinstance(item, str | int) or isinstance(item, bool) or not str(item).strip():
                self.child(f"[{index}]").error(f"expected a string, got {_kind(item)}")
                return None
            out.append(str(item).strip())
        return tuple(out)

    def choice(self, value: Any, choices: Sequence[str]) -> str | None:
        """One of `choices` (case-insensitive)."""
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        self.error(f"{_show(value)} is not one of: {', '.join(choices)}")
        return None

    def boolean(self, value: Any) -> bool | None:
        """`true` or `false`."""
        if isinstance(value, bool):
            return value
        self.error(f"expected true or false, got {_kind(value)}")
        return None

    def count(self, value: Any, minimum: int = 0) -> int | None:
        """A whole number at least `minimum`."""
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return value
        self.error(f"expected a whole number >= {minimum}, got {_show(value)}")
        return None

    def size(self, value: Any) -> int | None:
        """A size in bytes: a number, or text like `10MB`, `512 KiB`."""
        parsed = parse_size(value)
        if parsed is None:
            self.error(f"expected a size in bytes such as 1048576 or 10MB, got {_show(value)}")
        return parsed


def parse_size(value: Any) -> int | None:
    """Bytes from a number or `<number><unit>` (B, KB, MB, GB, TB; binary multiples)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.match(value)
    if match is None:
        return None
    unit = match.group(2).lower()[:1]
    return int(float(match.group(1)) * _UNITS[unit])


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {_show(value)}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
