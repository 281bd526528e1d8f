"""Bearer-token authentication, roles, and the rate limit on failed attempts.

Tokens are checked by hash in the store (constant-time comparison there), and a valid
one is remembered for a few seconds (`TokenCache`). A request without a valid token gets
401 and counts as a failure for its client address; an address with
`http.auth_failures_per_minute` failures in the last minute gets 429 for every
authenticated route until the window clears. A valid token with too small a role gets
403 (not a failure: the caller is known).

On first start with no tokens at all, `ensure_admin_token` creates an admin token and
writes it to `state_dir/admin-token` (0600); the log names the file, never the token.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dlp.api.errors import ApiError
from dlp.api.state import get_state
from dlp.metrics import AUTH_FAILURES
from dlp.store import Conflict, Role, Store, TokenInfo
from dlp.store.tokens import hash_token

__all__ = [
    "ADMIN_TOKEN_FILE",
    "AdminToken",
    "ReviewerToken",
    "ScannerToken",
    "bearer",
    "ensure_admin_token",
    "require",
]

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"

bearer = HTTPBearer(auto_error=False, description="an API token from `dlp token create`")


def require(role: Role) -> Callable[..., Awaitable[TokenInfo]]:
    """A route dependency: the caller's token, which must have at least `role`."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> TokenInfo:
        state = get_state(request)
        limiter = state.limiter
        store = state.store
        address = request.client.host if request.client else "unknown"
        wait = limiter.retry_after(address)
        if wait is not None:
            raise ApiError(
                429,
                "too many failed authentications",
                f"try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        info = None
        if credentials is not None and credentials.credentials:
            digest = hash_token(credentials.credentials)
            info = state.tokens.get(digest)
            if info is None:
                info = await asyncio.to_thread(store.verify_token, credentials.credentials)
                if info is not None:
                    state.tokens.put(digest, info)
        if info is None:
            limiter.fail(address)
            AUTH_FAILURES.inc()
            detail = "a valid bearer token is required" if credentials is None else "the token is not valid"
            raise ApiError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
        if info.role < role:
            raise ApiError(403, "forbidden", f"this route needs the {role.label} role")
        return info

    return dependency


def ensure_admin_token(store: Store, state_dir: Path) -> Path | None:
    """On first start (no active token), create an admin token in a 0600 file.

    Returns the file's path when a token was created, None otherwise."""
    if store.has_tokens():
        return None
    try:
        secret, info = store.create_token(Role.ADMIN, "admin")
    except Conflict:
        secret, info = store.create_token(Role.ADMIN)
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


ScannerToken = Annotated[TokenInfo, Depends(require(Role.SCANNER))]
ReviewerToken = Annotated[TokenInfo, Depends(require(Role.REVIEWER))]
AdminToken = Annotated[TokenInfo, Depends(require(Role.ADMIN))]
