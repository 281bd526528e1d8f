"""A cap on request bodies read whole (JSON routes), enforced as the body is read.

`POST /v1/scan` streams its body to disk under its own limit and is left alone here.
Every other route reads its body through a counting `receive`: a declared
`Content-Length` above `limit`, or more than `limit` bytes arriving, raises a 413
`ApiError` at the first read past the limit, so a client cannot make a JSON route buffer
an unbounded body. Nothing is read before the route runs, so a caller without a valid
token gets 401 (authentication comes first) whatever the size of its body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlp.api.errors import ApiError

__all__ = ["BodyLimit"]


class BodyLimit:
    """Pure ASGI middleware: 413 for bodies above `limit`, except on `streaming_paths`."""

    def __init__(self, app: ASGIApp, limit: int, streaming_paths: tuple[str, ...]) -> None:
        self.app = app
        self.limit = limit
        self.streaming_paths = streaming_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.streaming_paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        length = headers.get(b"content-length", b"")
        declared_too_large = length.isdigit() and int(length) > self.limit
        total = 0

        async def counted() -> Message:
            nonlocal total
            if declared_too_large:
                raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.limit:
                    raise self._too_large()
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> ApiError:
        return ApiError(413, "too large", f"the body is larger than the limit of {self.limit} bytes")
