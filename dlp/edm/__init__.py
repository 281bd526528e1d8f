"""Exact data match: know when our own customers' records leave, from hashes only.

`build_index` turns a CRM export into an index of keyed hashes (no plaintext);
`EdmMatcher` finds indexed records in scanned parts and reports `edm:<name>` findings
that say how many records matched and on which columns, never which values.
"""

from __future__ import annotations

from pathlib import Path

from dlp.edm.index import EdmError, EdmIndex, IndexStats, build_index, index_path, parse_columns
from dlp.edm.matcher import EdmMatcher, detector_id

__all__ = [
    "EdmError",
    "EdmIndex",
    "EdmMatcher",
    "IndexStats",
    "build_index",
    "detector_id",
    "edm_folder",
    "edm_key_path",
    "index_path",
    "parse_columns",
]


def edm_folder(state_dir: Path) -> Path:
    """Where an installation keeps its EDM indexes."""
    return state_dir / "edm"


def edm_key_path(state_dir: Path) -> Path:
    """The secret that keys every EDM hash (kept apart from the finding-hash key)."""
    return state_dir / "keys" / "edm.key"
