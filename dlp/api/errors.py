"""Errors as JSON `{"error", "detail"}` with the right status, never a traceback.

Routes raise `ApiError` (or let a `DlpError` through); the handlers installed by
`install_handlers` turn everything into the documented body. `responses(...)` gives
each route's OpenAPI entries for the statuses it can answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Route

from dlp.api.schemas import ErrorBody
from dlp.errors import NotFound, ScanTimeout, StoreError
from dlp.store import Conflict

__all__ = ["ApiError", "error_response", "install_handlers", "responses"]

log = logging.getLogger(__name__)

_DESCRIPTIONS = {
    400: "the request body is not usable",
    401: "no valid bearer token",
    403: "the token's role may not use this route",
    404: "no such record",
    409: "the record is not in a state that allows this",
    413: "the body is above the upload limit",
    415: "the body's Content-Encoding is not gzip or identity",
    422: "invalid parameters or body",
    429: "too many failed authentications from this address",
    502: "the next hop refused the message",
    503: "scanning, the store or the next hop is unavailable; retry later",
}


class ApiError(StarletteHTTPException):
    """An error answer: status, short name, sentence, optional headers.

    An HTTP exception, so one raised while FastAPI reads a body (the body limit) keeps
    its status instead of becoming FastAPI's generic 400."""

    def __init__(
        self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, dict(headers or {}))
        self.status = status
        self.error = error


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error body with its status."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=dict(headers or {}))


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _allowed(routes: Sequence[BaseRoute], path: str) -> str:
    """Every method some route takes at `path`. RFC 9110: a 405 names them all; the router
    names only those of the first route with the path, so a path with a GET and a PATCH
    route answered `Allow: GET`. GET routes take HEAD too (`HeadAsGet`)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.fullmatch(path):
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def install_handlers(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Register the handlers that give every error the JSON shape; `routes` are every
    route of the application, for the `Allow` header of a 405."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.error, exc.detail, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        try:
            name = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            name = "error"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(routes, request.url.path)
        return error_response(exc.status_code, name, str(exc.detail), headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid request", _validation_detail(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not found", str(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    async def store_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("store error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503, "store unavailable", "the store could not complete the request; retry later"
        )

    async def timeout(request: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "scan timeout", str(exc), {"Retry-After": "5"})

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return error_response(500, "internal error", "see the service log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(ScanTimeout, timeout)
    app.add_exception_handler(Exception, internal)
