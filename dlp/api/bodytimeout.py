"""A deadline on each wait for request body bytes.

A client that declares a body and then stops sending (a slow-loris client, or one whose
network died without a reset) held its request, and whatever the route had spooled, open
for ever: uvicorn has no such timeout. Each read of the body now waits at most
`http.body_timeout_seconds`; past it the route's read raises a 408 `ApiError`. Once the
body is complete, reads (a response waiting for a disconnect) are not timed.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlp.api.errors import ApiError

__all__ = ["BodyTimeout"]


class BodyTimeout:
    """Pure ASGI middleware: 408 when body bytes stop arriving for `seconds`."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False

        async def timed() -> Message:
            nonlocal complete
            if complete:
                return await receive()
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408, "request timeout", f"no body bytes arrived for {self.seconds:g} s"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, timed, send)
