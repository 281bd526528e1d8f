"""Reading policy YAML while remembering where every key was, so errors name the line.

Policy files are data only: they are read with PyYAML's safe loader, and each mapping
comes back as a `LineMap`, a dict that also knows its own line and the line of each key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from dlp.errors import PolicyError

__all__ = ["LineMap", "read_yaml"]


class LineMap(dict[str, Any]):
    """A mapping read from YAML with the 1-based line of itself and of each key."""

    line: int = 0
    lines: dict[str, int]
    duplicates: list[tuple[str, int]]

    def line_of(self, key: str) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.lines.get(key, self.line)


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's parser when PyYAML has it), with mappings built as `LineMap`."""


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[LineMap]:
    loader.flatten_mapping(node)
    data = LineMap()
    data.line = node.start_mark.line + 1
    data.lines = {}
    data.duplicates = []
    yield data
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        key = str(key)
        if key in data:
            data.duplicates.append((key, line))
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


def read_yaml(path: Path) -> Any:
    """The document in `path`, mappings as `LineMap`; raises `PolicyError` on bad YAML."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), None, None, f"cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(str(path), line, None, f"invalid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(str(path), None, None, f"invalid YAML: {exc}") from exc
