"""Detection: detector definitions (YAML data) -> compiled engine -> findings.

`Engine.from_folders(folders, hash_key)` loads every definition once; `engine.detect(part)`
returns findings that carry a masked preview and a keyed hash, never the raw value.
"""

from __future__ import annotations

from dlp.detect.engine import DIGIT_RUN, Candidate, DetectorInfo, Engine, RunCounts
from dlp.errors import DefinitionError

__all__ = ["DIGIT_RUN", "Candidate", "DefinitionError", "DetectorInfo", "Engine", "RunCounts"]
