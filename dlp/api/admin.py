"""Admin routes: the audit log and API tokens (create, list, revoke; all audited)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from dlp.api.auth import AdminToken, AuthenticatedRoute
from dlp.api.errors import responses
from dlp.api.jsonbody import JsonBody, json_body_doc
from dlp.api.schemas import AuditPage, TokenCreatedOut, TokenCreateIn, TokenOut
from dlp.api.state import State
from dlp.store import Role, TokenInfo, iso_time

__all__ = ["router", "token_dict"]

router = APIRouter(tags=["admin"], route_class=AuthenticatedRoute)

_COMMON = responses(401, 403, 422, 429, 503)


def token_dict(info: TokenInfo) -> dict[str, Any]:
    """A token as the API shows it (never its secret)."""
    return {
        "id": info.id,
        "name": info.name,
        "role": info.role.label,
        "created_at": iso_time(info.created_at),
        "revoked": info.revoked,
    }


@router.get("/v1/audit", response_model=AuditPage, summary="The audit log", responses=_COMMON)
async def list_audit(
    token: AdminToken,
    state: State,
    actor: str | None = Query(default=None, max_length=100),
    action: str | None = Query(default=None, max_length=64),
    target: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> JSONResponse:
    """Who did what, when: newest first, filtered by actor, action or target."""
    page = await asyncio.to_thread(
        state.store.list_audit, actor=actor, action=action, target=target, limit=limit, offset=offset
    )
    return JSONResponse(page.to_dict())


@router.get("/v1/tokens", response_model=list[TokenOut], summary="API tokens", responses=_COMMON)
async def list_tokens(token: AdminToken, state: State) -> JSONResponse:
    """Every token, revoked ones included, without secrets."""
    return JSONResponse([token_dict(t) for t in await asyncio.to_thread(state.store.list_tokens)])


@router.post(
    "/v1/tokens",
    status_code=201,
    response_model=TokenCreatedOut,
    summary="Create an API token (shown once; audited)",
    responses={**_COMMON, **responses(409)},
    openapi_extra=json_body_doc(TokenCreateIn),
)
async def create_token(
    request: Annotated[TokenCreateIn, Depends(JsonBody(TokenCreateIn))],
    token: AdminToken,
    state: State,
) -> JSONResponse:
    """A new token; its secret is in this answer and nowhere else."""
    secret, info = await asyncio.to_thread(state.store.create_token, Role.parse(request.role), request.name)
    await asyncio.to_thread(
        state.store.append_audit,
        token.name,
        "token.create",
        info.id,
        {"name": info.name, "role": request.role},
    )
    return JSONResponse({**token_dict(info), "token": secret}, status_code=201)


@router.delete(
    "/v1/tokens/{token_id}",
    response_model=TokenOut,
    summary="Revoke an API token by id or name (audited)",
    responses={**_COMMON, **responses(404)},
)
async def revoke_token(
    token: AdminToken,
    state: State,
    token_id: str = Path(min_length=1, max_length=100),
) -> JSONResponse:
    """Revoke a token; requests with it get 401 from now on."""
    info = await asyncio.to_thread(state.store.revoke_token, token_id)
    state.tokens.clear()
    await asyncio.to_thread(
        state.store.append_audit, token.name, "token.revoke", info.id, {"name": info.name}
    )
    return JSONResponse(token_dict(info))
