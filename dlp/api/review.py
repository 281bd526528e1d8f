"""Reviewer routes: quarantine (list, metadata, content, release, delete) and incidents.

Reading content, releasing, deleting and changing an incident are written to the audit
log with the token's name before the answer goes out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from dlp.api.auth import AuthenticatedRoute, ReviewerToken
from dlp.api.errors import ApiError, responses
from dlp.api.jsonbody import JsonBody, json_body_doc
from dlp.api.release import release_item
from dlp.api.schemas import (
    IncidentOut,
    IncidentPage,
    IncidentPatch,
    QuarantineOut,
    QuarantinePage,
    ReleaseOut,
)
from dlp.api.state import State
from dlp.logging import scrub
from dlp.store import parse_time

__all__ = ["router"]

router = APIRouter(tags=["review"], route_class=AuthenticatedRoute)

RecordId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$", description="the record's id")
]
_COMMON = responses(401, 403, 422, 429, 503)


def _time(name: str, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ApiError(422, "invalid request", f"{name}: not an ISO 8601 time") from exc


@router.get(
    "/v1/quarantine", response_model=QuarantinePage, summary="List quarantined items", responses=_COMMON
)
async def list_quarantine(
    token: ReviewerToken,
    state: State,
    status: Literal["held", "releasing", "released", "deleted"] | None = None,
    channel: str | None = Query(default=None, max_length=32),
    action: Literal["allow", "alert", "quarantine", "block"] | None = None,
    since: str | None = Query(default=None, max_length=64, description="ISO 8601, inclusive"),
    until: str | None = Query(default=None, max_length=64, description="ISO 8601, exclusive"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> JSONResponse:
    """Quarantined items newest first, with masked findings."""
    page = await asyncio.to_thread(
        state.store.list_quarantine,
        status=status,
        channel=channel,
        action=action,
        since=_time("since", since),
        until=_time("until", until),
        limit=limit,
        offset=offset,
    )
    return JSONResponse(page.to_dict())


@router.get(
    "/v1/quarantine/{item_id}",
    response_model=QuarantineOut,
    summary="A quarantined item's metadata",
    responses={**_COMMON, **responses(404)},
)
async def get_quarantine(
    token: ReviewerToken,
    state: State,
    item_id: RecordId,
) -> JSONResponse:
    """Metadata and masked findings of one item (never its content)."""
    return JSONResponse(await asyncio.to_thread(state.store.get_quarantine, item_id))


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.get(
    "/v1/quarantine/{item_id}/content",
    summary="The original bytes of a quarantined item (audited)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        **_COMMON,
        **responses(404),
    },
)
async def read_content(
    token: ReviewerToken,
    state: State,
    item_id: RecordId,
) -> StreamingResponse:
    """Stream the decrypted original; the read is audited before the first byte."""
    item = await asyncio.to_thread(state.store.get_quarantine, item_id)
    chunks: Iterator[bytes] = await asyncio.to_thread(state.store.read_quarantine, item_id)
    await asyncio.to_thread(state.store.append_audit, token.name, "quarantine.read", item_id, {})
    original = item["item_name"] or ""
    name = _SAFE_NAME.sub("_", original)[:100] or f"{item_id}.bin"
    disposition = f'attachment; filename="{name}"'
    if original and original != name:
        # RFC 6266: browsers and curl -J save under the real (UTF-8) name, others the ASCII one
        disposition += f"; filename*=UTF-8''{quote(original, safe='')}"
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(item["size"]),
        },
    )


@router.post(
    "/v1/quarantine/{item_id}/release",
    response_model=ReleaseOut,
    summary="Deliver a quarantined item as originally addressed (once; audited)",
    responses={**_COMMON, **responses(404, 409, 502)},
)
async def release(
    token: ReviewerToken,
    state: State,
    item_id: RecordId,
) -> JSONResponse:
    """Release an item: claimed once, delivered to the next hop, outcome recorded."""
    outcome = await release_item(state.store, state.settings, item_id, token.name)
    await asyncio.to_thread(
        state.store.append_audit,
        token.name,
        "quarantine.release",
        item_id,
        {"ok": outcome.ok, "outcome": outcome.outcome},
    )
    if not outcome.ok:
        raise ApiError(502, "release failed", outcome.outcome)
    item = await asyncio.to_thread(state.store.get_quarantine, item_id)
    return JSONResponse({"released": True, "outcome": outcome.outcome, "item": item})


@router.delete(
    "/v1/quarantine/{item_id}",
    response_model=QuarantineOut,
    summary="Delete a quarantined item's content and key material (audited)",
    responses={**_COMMON, **responses(404, 409)},
)
async def delete(
    token: ReviewerToken,
    state: State,
    item_id: RecordId,
) -> JSONResponse:
    """Destroy the content; the metadata stays (status `deleted`) until retention."""
    await asyncio.to_thread(state.store.delete_quarantine, item_id, token.name)
    await asyncio.to_thread(state.store.append_audit, token.name, "quarantine.delete", item_id, {})
    return JSONResponse(await asyncio.to_thread(state.store.get_quarantine, item_id))


@router.get("/v1/incidents", response_model=IncidentPage, summary="List incidents", responses=_COMMON)
async def list_incidents(
    token: ReviewerToken,
    state: State,
    status: Literal["open", "resolved", "false-positive"] | None = None,
    channel: str | None = Query(default=None, max_length=32),
    action: Literal["allow", "alert", "quarantine", "block"] | None = None,
    monitor: bool | None = None,
    since: str | None = Query(default=None, max_length=64, description="ISO 8601, inclusive"),
    until: str | None = Query(default=None, max_length=64, description="ISO 8601, exclusive"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> JSONResponse:
    """Incidents newest first."""
    page = await asyncio.to_thread(
        state.store.list_incidents,
        status=status,
        channel=channel,
        action=action,
        monitor=monitor,
        since=_time("since", since),
        until=_time("until", until),
        limit=limit,
        offset=offset,
    )
    return JSONResponse(page.to_dict())


@router.get(
    "/v1/incidents/{incident_id}",
    response_model=IncidentOut,
    summary="One incident",
    responses={**_COMMON, **responses(404)},
)
async def get_incident(
    token: ReviewerToken,
    state: State,
    incident_id: RecordId,
) -> JSONResponse:
    """One incident with its masked findings, rules and deadlines."""
    return JSONResponse(await asyncio.to_thread(state.store.get_incident, incident_id))


@router.patch(
    "/v1/incidents/{incident_id}",
    response_model=IncidentOut,
    summary="Change an incident's status or notes (audited)",
    responses={**_COMMON, **responses(404)},
    openapi_extra=json_body_doc(IncidentPatch),
)
async def update_incident(
    patch: Annotated[IncidentPatch, Depends(JsonBody(IncidentPatch))],
    token: ReviewerToken,
    state: State,
    incident_id: RecordId,
) -> JSONResponse:
    """Mark an incident resolved or a false positive (which feeds tuning), add notes.

    Notes are scrubbed as log lines are (card and account numbers, national ids, keys,
    e-mail addresses masked): a reviewer pasting the value into a note must not put it
    into the store, the API's answers and the alerts."""
    notes = None if patch.notes is None else scrub(patch.notes)
    incident = await asyncio.to_thread(
        state.store.update_incident, incident_id, token.name, status=patch.status, notes=notes
    )
    detail: dict[str, Any] = {"status": patch.status} if patch.status else {}
    if patch.notes is not None:
        detail["notes_changed"] = True
    await asyncio.to_thread(state.store.append_audit, token.name, "incident.update", incident_id, detail)
    return JSONResponse(incident)
