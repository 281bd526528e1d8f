"""What every route needs, held once per app: settings, store, scan pool, limiter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from dlp.api.limiter import FailureLimiter
from dlp.api.tokencache import TokenCache
from dlp.config import Settings
from dlp.model import Item, ScanContext, ScanResult
from dlp.store import Store

__all__ = ["ApiState", "InfoSource", "ScanService", "State", "get_state"]

InfoSource = Callable[[], list[dict[str, Any]]]


class ScanService(Protocol):
    """What the API needs of `dlp.workers.ScanPool`: scanning off the event loop."""

    async def scan(self, item: Item, context: ScanContext, timeout: float | None = None) -> ScanResult:
        """Scan one item in a worker; raise `ScanTimeout` past the deadline."""
        ...


@dataclass
class ApiState:
    """The app's collaborators, stored on `app.state.dlp`."""

    settings: Settings
    store: Store
    pool: ScanService
    spool_dir: Path
    policies_info: InfoSource | None
    detectors_info: InfoSource | None
    limiter: FailureLimiter
    tokens: TokenCache


def get_state(request: Request) -> ApiState:
    """The app's `ApiState`."""
    state: ApiState = request.app.state.dlp
    return state


async def _state_dependency(request: Request) -> ApiState:
    # async, so FastAPI does not hand this lookup to its thread pool on every request
    return get_state(request)


State = Annotated[ApiState, Depends(_state_dependency)]
