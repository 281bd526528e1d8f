"""The HTTP API: scanning for file shares and upload portals, review for security teams.

`create_app(settings, pool, store, policies_info, detectors_info)` builds the FastAPI
app that `dlp serve` runs on uvicorn. Routes, roles and shapes: INTERFACE.md.
"""

from __future__ import annotations

from dlp.api.app import create_app
from dlp.api.auth import ADMIN_TOKEN_FILE, ensure_admin_token
from dlp.api.release import ReleaseOutcome, release_item
from dlp.api.state import InfoSource, ScanService

__all__ = [
    "ADMIN_TOKEN_FILE",
    "InfoSource",
    "ReleaseOutcome",
    "ScanService",
    "create_app",
    "ensure_admin_token",
    "release_item",
]
