"""`HEAD` answered as `GET` without the body (RFC 9110 9.3.2).

FastAPI routes declared with `GET` answer `HEAD` with 405, so `curl -I /healthz`, an
uptime checker probing with `HEAD`, or a client checking a quarantined item's size
before fetching it got "method not allowed". This middleware runs the `GET` route for a
`HEAD` request (authentication and roles included) and sends its status and headers,
`Content-Length` too, with no body.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HeadAsGet"]


class HeadAsGet:
    """Pure ASGI middleware: `HEAD` requests run as `GET`; body messages go out empty."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
