"""Bearer-token authentication, roles, and the rate limit on failed attempts.

Authentication comes first: routes use `AuthenticatedRoute`, which checks the token and
its role before FastAPI reads or validates anything else of the request, so a caller
without a valid token gets 401 (and a known caller with too small a role 403) whatever
the body or parameters; only then can a malformed body get 422. The route dependencies
(`ScannerToken`, ...) hand the already verified token to the route.

Tokens are checked by hash in the store (constant-time comparison there), and a valid
one is remembered for a few seconds (`TokenCache`). A request without a valid token gets
401 and counts as a failure for its client address; an address with
`http.auth_failures_per_minute` failures in the last minute gets 429 for every further
request without a valid token until the window clears. A valid token is always served:
behind one NAT address, a script with a bad token must not lock out everyone else (a
token holds 256 random bits, so letting valid ones through teaches a guesser nothing).
A valid token with too small a role gets 403 (not a failure: the caller is known).

On first start with no tokens at all, `ensure_admin_token` creates an admin token and
writes it to `state_dir/admin-token` (0600); the log names the file, never the token.
The store creates it only if no active token exists, atomically, so of several
replicas starting together on one empty shared store exactly one creates it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from dlp.api.errors import ApiError
from dlp.api.state import get_state
from dlp.metrics import AUTH_FAILURES
from dlp.store import Role, Store, TokenInfo
from dlp.store.tokens import hash_token

__all__ = [
    "ADMIN_TOKEN_FILE",
    "AdminToken",
    "AuthenticatedRoute",
    "Require",
    "ReviewerToken",
    "ScannerToken",
    "authenticate",
    "bearer",
    "ensure_admin_token",
]

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
_VERIFIED = "dlp.token"

bearer = HTTPBearer(auto_error=False, description="an API token from `dlp token create`")


async def authenticate(request: Request, role: Role) -> TokenInfo:
    """The caller's token, which must have at least `role`: 401 without a valid token
    (429 once the address has too many recent failures), 403 for too small a role.

    A request is verified once; later calls return the token found the first time."""
    info: TokenInfo | None = request.scope.get(_VERIFIED)
    if info is None:
        info = await _verify(request)
        request.scope[_VERIFIED] = info
    if info.role < role:
        raise ApiError(403, "forbidden", f"this route needs the {role.label} role")
    return info


async def _verify(request: Request) -> TokenInfo:
    state = get_state(request)
    credentials = await bearer(request)
    info = None
    if credentials is not None and credentials.credentials:
        digest = hash_token(credentials.credentials)
        info = state.tokens.get(digest)
        if info is None:
            info = await asyncio.to_thread(state.store.verify_token, credentials.credentials)
            if info is not None:
                state.tokens.put(digest, info)
    if info is not None:
        return info
    address = request.client.host if request.client else "unknown"
    wait = state.limiter.retry_after(address)
    if wait is not None:
        raise ApiError(
            429,
            "too many failed authentications",
            f"try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    state.limiter.fail(address)
    AUTH_FAILURES.inc()
    detail = "a valid bearer token is required" if credentials is None else "the token is not valid"
    raise ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class Require:
    """A route dependency: the caller's token, which must have at least `role`.

    With `AuthenticatedRoute` the check has already run before the body was read; the
    dependency then returns its outcome (and documents the bearer scheme in OpenAPI)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> TokenInfo:
        return await authenticate(request, self.role)


def _required_role(dependant: Dependant) -> Role | None:
    roles = [d.call.role for d in dependant.dependencies if isinstance(d.call, Require)]
    roles += [r for d in dependant.dependencies if (r := _required_role(d)) is not None]
    return max(roles, default=None)


class AuthenticatedRoute(APIRoute):
    """A route that authenticates (401/403/429) before its body or parameters are read,
    when one of its dependencies is a `Require`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The FastAPI handler, preceded by the token and role check."""
        handler = super().get_route_handler()
        role = _required_role(self.dependant)
        if role is None:
            return handler

        async def authenticated(request: Request) -> Response:
            await authenticate(request, role)
            return await handler(request)

        return authenticated


def ensure_admin_token(store: Store, state_dir: Path) -> Path | None:
    """On first start (no active token), create an admin token in a 0600 file.

    The store creates it only if no active token exists, in one atomic step, so of
    several replicas starting together on one shared store exactly one writes a file.
    Returns the file's path when a token was created, None otherwise."""
    if store.has_tokens():
        return None
    created = store.create_first_token(Role.ADMIN, "admin")
    if created is None:
        return None
    secret, info = created
    path = state_dir / ADMIN_TOKEN_FILE
    try:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError:
        store.revoke_token(info.id)
        raise
    store.append_audit(
        "system", "token.create", info.id, {"name": info.name, "role": "admin", "first_start": True}
    )
    log.warning("no API tokens existed: created admin token '%s'; it is in %s (mode 0600)", info.name, path)
    return path


ScannerToken = Annotated[TokenInfo, Depends(Require(Role.SCANNER))]
ReviewerToken = Annotated[TokenInfo, Depends(Require(Role.REVIEWER))]
AdminToken = Annotated[TokenInfo, Depends(Require(Role.ADMIN))]
