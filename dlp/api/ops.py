"""Operations routes: liveness, readiness, Prometheus metrics, and what is loaded."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dlp.api.auth import AuthenticatedRoute, ScannerToken
from dlp.api.errors import responses
from dlp.api.readiness import check_ready
from dlp.api.schemas import ReadyOut
from dlp.api.state import ApiState, State
from dlp.errors import StoreError
from dlp.metrics import INCIDENTS_OPEN, QUARANTINE_BYTES, QUARANTINE_ITEMS, STORE_UP

__all__ = ["metrics_router", "router"]

router = APIRouter(tags=["operations"], route_class=AuthenticatedRoute)


@router.get("/healthz", summary="Liveness", responses={200: {"content": {"application/json": {}}}})
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: policies loaded, store writable, next hop reachable",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "a check failed"}},
)
async def readyz(state: State) -> JSONResponse:
    """200 when every check passes, 503 naming the ones that do not."""
    checks = await check_ready(state.settings, state.store, state.policies_info)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/v1/detectors",
    tags=["scan"],
    summary="Loaded detectors",
    response_model=list[dict[str, Any]],
    responses=responses(401, 403, 429, 503),
)
async def detectors(token: ScannerToken, state: State) -> JSONResponse:
    """The detectors the scanners run, with category, regulations and confidence rules."""
    return JSONResponse(state.detectors_info() if state.detectors_info else [])


@router.get(
    "/v1/policies",
    tags=["scan"],
    summary="Loaded policies",
    response_model=list[dict[str, Any]],
    responses=responses(401, 403, 429, 503),
)
async def policies(token: ScannerToken, state: State) -> JSONResponse:
    """The policy rules in force."""
    return JSONResponse(state.policies_info() if state.policies_info else [])


async def _metrics_text(state: ApiState) -> Response:
    """The metrics page; the store gauges keep their last values while the store is
    unreachable (dlp_store_up says so), so Prometheus still sees the service."""
    try:
        counts = await asyncio.to_thread(state.store.counts)
    except StoreError:
        STORE_UP.set(0)
    else:
        STORE_UP.set(1)
        QUARANTINE_ITEMS.set(counts.quarantine_items)
        QUARANTINE_BYTES.set(counts.quarantine_bytes)
        INCIDENTS_OPEN.set(counts.open_incidents)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


_METRICS_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}
}


def metrics_router(public: bool) -> APIRouter:
    """`GET /metrics`: open to all when `public`, otherwise for any valid token."""
    metrics = APIRouter(tags=["operations"], route_class=AuthenticatedRoute)
    if public:

        @metrics.get(
            "/metrics", summary="Prometheus metrics", response_class=Response, responses=_METRICS_DOC
        )
        async def open_metrics(state: State) -> Response:
            """Counters, histograms and the store gauges."""
            return await _metrics_text(state)

    else:

        @metrics.get(
            "/metrics",
            summary="Prometheus metrics",
            response_class=Response,
            responses={**_METRICS_DOC, **responses(401, 429)},
        )
        async def guarded_metrics(token: ScannerToken, state: State) -> Response:
            """Counters, histograms and the store gauges (any valid token)."""
            return await _metrics_text(state)

    return metrics
