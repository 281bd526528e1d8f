"""The FastAPI application: routes, error shape, body limits and first-start token.

`create_app` wires the collaborators the serve command built (settings, scan pool,
store, what is loaded) into one app; it does no scanning itself: scans go to the pool.
"""

from __future__ import annotations

from fastapi import FastAPI

from dlp import __version__
from dlp.api import admin, ops, review, scanning
from dlp.api.auth import ensure_admin_token
from dlp.api.bodylimit import BodyLimit
from dlp.api.bodytimeout import BodyTimeout
from dlp.api.decoding import ContentDecoding
from dlp.api.errors import install_handlers
from dlp.api.head import HeadAsGet
from dlp.api.limiter import FailureLimiter
from dlp.api.spool import clear_spool
from dlp.api.state import ApiState, InfoSource, ScanService
from dlp.api.tokencache import TOKEN_CACHE_SECONDS, TokenCache
from dlp.config import Settings
from dlp.store import Store

__all__ = ["create_app"]

_DESCRIPTION = """Scan files and text for sensitive data; review quarantine and incidents.

Authenticate with `Authorization: Bearer TOKEN` (`dlp token create --role ...`).
Roles: `scanner` (scan), `reviewer` (+ quarantine and incidents), `admin` (+ audit, tokens).
Errors are JSON `{"error": "...", "detail": "..."}`.
Request bodies may be sent with `Content-Encoding: gzip` (decoded before scanning; the
decoded size counts against the limits); other encodings get 415.
"""


def create_app(
    settings: Settings,
    pool: ScanService,
    store: Store,
    policies_info: InfoSource | None = None,
    detectors_info: InfoSource | None = None,
) -> FastAPI:
    """The HTTP API for one installation.

    `pool` is the `dlp.workers.ScanPool` (anything with its `scan` coroutine);
    `policies_info` / `detectors_info` list what is loaded for `/v1/policies`,
    `/v1/detectors` and the readiness check (no policies: not ready). On first start
    with no API token, an admin token is written to `state_dir/admin-token`."""
    spool_dir = settings.state_dir / "spool"
    clear_spool(spool_dir)
    ensure_admin_token(store, settings.state_dir)
    app = FastAPI(title="dlp", version=__version__, description=_DESCRIPTION)
    app.state.dlp = ApiState(
        settings=settings,
        store=store,
        pool=pool,
        spool_dir=spool_dir,
        policies_info=policies_info,
        detectors_info=detectors_info,
        limiter=FailureLimiter(settings.http.auth_failures_per_minute),
        tokens=TokenCache(ttl=TOKEN_CACHE_SECONDS if settings.store == "sqlite" else 0.0),
    )
    routers = (
        scanning.router,
        review.router,
        admin.router,
        ops.router,
        ops.metrics_router(settings.http.metrics_public),
    )
    for router in routers:
        app.include_router(router)
    install_handlers(app, [*app.router.routes, *(route for router in routers for route in router.routes)])
    app.add_middleware(BodyLimit, limit=scanning.TEXT_LIMIT, streaming_paths=("/v1/scan",))
    app.add_middleware(ContentDecoding, max_ratio=settings.limits.max_ratio)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodyTimeout, seconds=settings.http.body_timeout_seconds)
    return app
