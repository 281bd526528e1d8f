"""Scan routes: `POST /v1/scan` (raw or multipart upload) and `POST /v1/scan/text`.

Uploads are spooled to disk with the size limit enforced while streaming, scanned in a
worker process, and acted on: `quarantine` stores the item (encrypted) and tells the
caller to hold it (`quarantine_id`), and every result that warrants one records an
incident (`incident_id`). The spool file is always deleted afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from dlp.api.auth import AuthenticatedRoute, ScannerToken
from dlp.api.errors import ApiError, responses
from dlp.api.jsonbody import JsonBody, json_body_doc
from dlp.api.schemas import ScanOut, ScanTextIn
from dlp.api.spool import BadUpload, TooLarge, spool_body
from dlp.api.state import ApiState, State
from dlp.errors import ScanTimeout
from dlp.metrics import SCAN_ERRORS, record_scan
from dlp.model import Action, Item, ScanContext, ScanResult
from dlp.store import TokenInfo, incident_warranted

__all__ = ["TEXT_LIMIT", "router"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["scan"], route_class=AuthenticatedRoute)

TEXT_LIMIT = 10 * 1024 * 1024
# a multipart body may exceed the file it carries by its part headers and other fields;
# a raw body is the file, so a declared length above the limit is refused before reading
# (and before `100 Continue`, so curl does not send it)
_MULTIPART_ALLOWANCE = 1024 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "the file itself (any content type; name in `?filename=` or Content-Disposition) "
        "or `multipart/form-data` with the file in the field `file`",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


async def _scan_and_act(state: ApiState, item: Item, token: TokenInfo) -> dict[str, Any]:
    context = ScanContext(channel="http", client=token.name, internal_domains=state.settings.internal_domains)
    try:
        result: ScanResult = await state.pool.scan(item, context)
    except ScanTimeout:
        SCAN_ERRORS.labels("http").inc()
        raise
    except Exception as exc:
        SCAN_ERRORS.labels("http").inc()
        log.error("scan failed: %s", type(exc).__name__)
        raise ApiError(503, "scan failed", "the item could not be scanned; retry later") from exc
    record_scan("http", result)
    body = result.to_dict()
    quarantine_id = None
    if result.action is Action.QUARANTINE:
        content = item.path if item.path is not None else item.data
        assert content is not None
        quarantine_id = await asyncio.to_thread(state.store.quarantine, content, result, context)
    incident_id = None
    if incident_warranted(result):
        incident_id = await asyncio.to_thread(state.store.record_incident, result, context, quarantine_id)
    body["quarantine_id"] = quarantine_id
    body["incident_id"] = incident_id
    return body


@router.post(
    "/v1/scan",
    summary="Scan an uploaded file",
    response_model=None,
    responses={
        200: {"model": ScanOut, "description": "the scan result"},
        **responses(400, 401, 403, 413, 415, 422, 429, 503),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def scan_upload(
    request: Request,
    token: ScannerToken,
    state: State,
    filename: str | None = Query(default=None, max_length=255, description="the file's name"),
) -> JSONResponse:
    """Scan a raw or multipart upload; the body is spooled to disk, never held in memory."""
    limit = state.settings.http.max_upload_bytes
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/")
    allowance = _MULTIPART_ALLOWANCE if multipart else 0
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > limit + allowance:
        raise ApiError(413, "too large", f"the body is larger than the limit of {limit} bytes")
    try:
        spooled = await spool_body(
            request.stream(),
            request.headers.get("content-type"),
            request.headers.get("content-disposition"),
            filename,
            state.spool_dir,
            limit,
        )
    except TooLarge as exc:
        raise ApiError(413, "too large", str(exc)) from exc
    except BadUpload as exc:
        raise ApiError(400, "bad upload", str(exc)) from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "bad upload", "the client went away before the body ended") from exc
    if spooled.path is None:
        item = Item(data=spooled.data, name=spooled.name, declared_type=spooled.declared_type)
        return JSONResponse(await _scan_and_act(state, item, token))
    try:
        item = Item(path=spooled.path, name=spooled.name, declared_type=spooled.declared_type)
        return JSONResponse(await _scan_and_act(state, item, token))
    finally:
        await asyncio.to_thread(spooled.path.unlink, True)


@router.post(
    "/v1/scan/text",
    summary="Scan text",
    response_model=None,
    responses={
        200: {"model": ScanOut, "description": "the scan result"},
        **responses(400, 401, 403, 413, 415, 422, 429, 503),
    },
    openapi_extra=json_body_doc(ScanTextIn),
)
async def scan_text(
    payload: Annotated[ScanTextIn, Depends(JsonBody(ScanTextIn))],
    token: ScannerToken,
    state: State,
) -> JSONResponse:
    """Scan the JSON `text` (up to 10 MiB of body; larger texts go to `/v1/scan`)."""
    item = Item.from_text(payload.text, name=payload.name)
    return JSONResponse(await _scan_and_act(state, item, token))
