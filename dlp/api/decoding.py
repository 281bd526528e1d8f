"""Request bodies sent with `Content-Encoding: gzip` are decoded before any route reads them.

A client may compress what it uploads (`curl -H 'Content-Encoding: gzip' --data-binary
@x.csv.gz`, requests/httpx with a gzip body, a file-share connector saving bandwidth).
The routes then see the decoded bytes: a raw upload named `x.csv` is the CSV, a
multipart body is parsed after decoding (it was a "broken multipart body"), and a JSON
body is JSON (it was a 400). Decoding streams in blocks, so memory stays bounded; the
decoded bytes are what counts against `http.max_upload_bytes` and the JSON body cap,
and a body that expands more than `limits.max_ratio` times (past its first MiB) gets
413 as soon as it does, as the extractor's ratio limit does for archives.

`identity` is no encoding. Any other coding (`br`, `deflate`, `zstd`, several codings)
gets 415 with `Accept-Encoding: gzip` (RFC 7694), and a gzip body that is corrupt or
ends early gets 400. Errors are raised when the route first reads the body, so a caller
without a valid token still gets 401 first.
"""

from __future__ import annotations

import zlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dlp.api.errors import ApiError

__all__ = ["ContentDecoding"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_OUT_BLOCK = 256 * 1024
_RATIO_ALLOWANCE = 1024 * 1024
_DROPPED = (b"content-encoding", b"content-length")


def _codings(value: bytes) -> list[str]:
    names = (c.strip().lower() for c in value.decode("latin-1").split(","))
    return [name for name in names if name and name != "identity"]


class _Refuse:
    """A `receive` for an encoding we do not decode: 415 at the first read."""

    def __init__(self, codings: list[str]) -> None:
        self.codings = codings

    async def __call__(self) -> Message:
        raise ApiError(
            415,
            "unsupported content encoding",
            f"Content-Encoding {', '.join(self.codings)} is not accepted; send gzip or no encoding",
            headers={"Accept-Encoding": "gzip"},
        )


class _Gunzip:
    """A `receive` that inflates gzip members (one or several) in bounded blocks."""

    def __init__(self, receive: Receive, max_ratio: int) -> None:
        self.receive = receive
        self.max_ratio = max_ratio
        self.decoder = zlib.decompressobj(_GZIP_WBITS)
        self.pending = b""
        self.more = True
        self.received = 0
        self.produced = 0

    def _inflate(self) -> bytes:
        try:
            out = self.decoder.decompress(self.pending, _OUT_BLOCK)
        except zlib.error as exc:
            raise ApiError(400, "bad request", "the gzip body is corrupt") from exc
        if not self.decoder.eof:
            self.pending = self.decoder.unconsumed_tail
        else:
            # past a member's end the rest of the input is in unused_data (unconsumed_tail
            # may hold the same bytes); it is the next member
            self.pending = self.decoder.unused_data
            if self.pending:
                self.decoder = zlib.decompressobj(_GZIP_WBITS)
        self.produced += len(out)
        if self.produced > _RATIO_ALLOWANCE and self.produced > self.max_ratio * self.received:
            raise ApiError(
                413,
                "too large",
                f"the gzip body expands more than {self.max_ratio} times (limits.max_ratio)",
            )
        return out

    async def __call__(self) -> Message:
        while True:
            if self.pending:
                out = self._inflate()
                if out:
                    return {"type": "http.request", "body": out, "more_body": True}
                continue
            if not self.more:
                if not self.decoder.eof:
                    raise ApiError(400, "bad request", "the gzip body is truncated")
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await self.receive()
            if message["type"] != "http.request":
                return message
            self.more = message.get("more_body", False)
            self.pending = message.get("body", b"")
            self.received += len(self.pending)


class ContentDecoding:
    """Pure ASGI middleware: gzip request bodies decoded, other codings refused (415)."""

    def __init__(self, app: ASGIApp, max_ratio: int) -> None:
        self.app = app
        self.max_ratio = max_ratio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        encoding = b",".join(v for k, v in headers if k == b"content-encoding")
        if not encoding:
            await self.app(scope, receive, send)
            return
        codings = _codings(encoding)
        if not codings:
            kept = [(k, v) for k, v in headers if k != b"content-encoding"]
            await self.app({**scope, "headers": kept}, receive, send)
        elif codings in (["gzip"], ["x-gzip"]):
            kept = [(k, v) for k, v in headers if k not in _DROPPED]
            await self.app({**scope, "headers": kept}, _Gunzip(receive, self.max_ratio), send)
        else:
            await self.app(scope, _Refuse(codings), send)
