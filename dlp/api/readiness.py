"""Readiness checks: policies loaded, store writable, next hop reachable.

The next hop is checked only when the SMTP relay is enabled: for `smtp://` a TCP
connection is opened and closed within a short timeout; for `maildir:` the folder (or
the nearest existing parent that would hold it) must be writable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlp.config import Settings
from dlp.errors import ConfigError, DlpError
from dlp.smtp.nexthop import NextHop, next_hop_from_settings
from dlp.store import Store

__all__ = ["CONNECT_TIMEOUT", "check_ready"]

CONNECT_TIMEOUT = 2.0
OK = "ok"


async def _next_hop(hop: NextHop) -> str:
    if hop.kind == "maildir":
        assert hop.path is not None
        folder: Path = hop.path
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return OK if os.access(folder, os.W_OK) else f"{hop} is not writable"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(hop.host, hop.port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return f"{hop} unreachable: {type(exc).__name__}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return OK


async def check_ready(
    settings: Settings, store: Store, policies_info: Callable[[], list[dict[str, Any]]] | None
) -> dict[str, str]:
    """Each check's state: "ok" or a one-line reason."""
    checks: dict[str, str] = {}
    if policies_info is None:
        checks["policies"] = "no policy set loaded"
    else:
        checks["policies"] = OK if policies_info() else "no policies loaded"
    try:
        await asyncio.to_thread(store.check_writable)
        checks["store"] = OK
    except DlpError as exc:
        checks["store"] = f"not writable: {exc}"
    if settings.smtp.enabled:
        try:
            checks["next_hop"] = await _next_hop(next_hop_from_settings(settings))
        except ConfigError as exc:
            checks["next_hop"] = str(exc)
    return checks
