"""Upload bodies streamed to a spool file with the size limit enforced while streaming.

`POST /v1/scan` never holds a large body whole in memory: raw bodies are read chunk by
chunk from the ASGI stream, multipart bodies go through python-multipart's streaming
parser (the `file` field is kept, other fields are skipped). A body of up to 1 MiB stays
in memory (no disk round trip for the common small file); a larger one goes to a spool
file (mode 0600, under `state_dir/spool`) in 1 MiB blocks written off the event loop.
The spool file belongs to the caller, who deletes it after the scan.

Past the limit the rest of the body is read and discarded (up to a bound) so the client
gets its 413 answer instead of a reset connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = ["BadUpload", "Spooled", "TooLarge", "clear_spool", "disposition_filename", "spool_body"]

_WRITE_BLOCK = 1024 * 1024  # also the largest body kept in memory
_DRAIN_LIMIT = 64 * 1024 * 1024
_MULTIPART_OVERHEAD = 1024 * 1024
_MAX_NAME = 255
_PREFIX = "upload-"


class TooLarge(Exception):
    """The body is above the upload limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than the limit of {limit} bytes")
        self.limit = limit


class BadUpload(Exception):
    """The body is not a usable upload (broken multipart, no `file` field or several)."""


@dataclass(frozen=True)
class Spooled:
    """A received body: on disk (`path`, the caller deletes it) or, when small, in memory
    (`data`); how big, and what the client called it."""

    path: Path | None
    data: bytes | None
    size: int
    name: str | None
    declared_type: str | None


def disposition_filename(value: str | None) -> str | None:
    """The file name of a Content-Disposition value (RFC 2231 `filename*` too), trimmed."""
    if not value:
        return None
    message = email.message.Message()
    message["content-disposition"] = value
    try:
        name = message.get_filename()
    except (ValueError, LookupError):
        return None
    if not name:
        return None
    cleaned = "".join(ch for ch in str(name) if ch.isprintable()).strip()
    return cleaned[:_MAX_NAME] or None


def _form_filename(name: str | None) -> str | None:
    """A multipart/form-data file name as the sender's file was called: browsers (and
    httpx, requests, curl) write a double quote in it as `%22` (WHATWG HTML's form
    encoding, which also turns CR and LF into `%0D` and `%0A`; those stay, as control
    characters are dropped from names anyway)."""
    return None if name is None else name.replace("%22", '"')


def clear_spool(directory: Path) -> None:
    """Create the spool folder (0700) and remove uploads left by an earlier run."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for leftover in directory.glob(f"{_PREFIX}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


class _Writer:
    """Keeps a small body in memory; past `_WRITE_BLOCK` bytes moves it to a spool file
    (created then, 0600) and writes 1 MiB blocks in a thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending = bytearray()
        self.size = 0
        self.path: Path | None = None
        self.handle: IO[bytes] | None = None

    def add(self, data: bytes) -> None:
        self.pending += data
        self.size += len(data)

    def _open(self) -> tuple[Path, IO[bytes]]:
        fd, raw_path = tempfile.mkstemp(prefix=_PREFIX, dir=self.directory)
        return Path(raw_path), os.fdopen(fd, "wb")

    async def _create(self) -> IO[bytes]:
        path, handle = await asyncio.to_thread(self._open)
        self.path, self.handle = path, handle
        return handle

    async def flush(self, final: bool = False) -> None:
        if len(self.pending) < _WRITE_BLOCK and not (final and self.handle is not None and self.pending):
            return
        handle = self.handle or await self._create()
        block, self.pending = bytes(self.pending), bytearray()
        await asyncio.to_thread(handle.write, block)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def discard(self) -> None:
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def _drain(stream: AsyncIterator[bytes], already: int) -> None:
    seen = already
    async for chunk in stream:
        seen += len(chunk)
        if seen > _DRAIN_LIMIT:
            return


async def spool_body(
    stream: AsyncIterator[bytes],
    content_type: str | None,
    content_disposition: str | None,
    filename: str | None,
    directory: Path,
    limit: int,
) -> Spooled:
    """Receive the request body: in memory up to 1 MiB, else in a new spool file; raise
    `TooLarge` or `BadUpload`.

    Multipart bodies (`multipart/form-data`) contribute their `file` field; any other
    content type is the file itself, named by `filename` or Content-Disposition."""
    writer = _Writer(directory)
    try:
        media, params = parse_options_header((content_type or "").encode("latin-1", "replace"))
        if media == b"multipart/form-data":
            boundary = params.get(b"boundary")
            if not boundary:
                raise BadUpload("multipart body without a boundary")
            name, declared = await _multipart(stream, boundary, writer, limit)
        else:
            name = filename or disposition_filename(content_disposition)
            declared = content_type or None
            await _raw(stream, writer, limit)
        await writer.flush(final=True)
        writer.close()
    except BaseException:
        writer.discard()
        raise
    data = None if writer.path is not None else bytes(writer.pending)
    return Spooled(writer.path, data, writer.size, (name or "")[:_MAX_NAME] or None, declared)


async def _raw(stream: AsyncIterator[bytes], writer: _Writer, limit: int) -> None:
    async for chunk in stream:
        if writer.size + len(chunk) > limit:
            await _drain(stream, writer.size + len(chunk))
            raise TooLarge(limit)
        writer.add(chunk)
        await writer.flush()


class _FileField:
    """Callbacks for python-multipart: keep the `file` field, skip the others, and note
    a second `file` field (only one file is scanned per request, so a second one would
    pass unscanned: the upload is refused instead)."""

    def __init__(self, writer: _Writer, limit: int) -> None:
        self.writer = writer
        self.limit = limit
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.capturing = False
        self.found = False
        self.repeated = False
        self.name: str | None = None
        self.declared: str | None = None
        self.too_large = False

    def on_part_begin(self) -> None:
        self.headers = {}
        self.capturing = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        key = self.header_field.decode("latin-1").strip().lower()
        self.headers[key] = bytes(self.header_value).strip()
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = self.headers.get("content-disposition", b"")
        _, params = parse_options_header(disposition)
        if params.get(b"name") != b"file":
            return
        if self.found:
            self.repeated = True
        else:
            self.capturing = self.found = True
            self.name = _form_filename(disposition_filename(disposition.decode("utf-8", "replace")))
            declared = self.headers.get("content-type", b"").decode("latin-1")
            self.declared = declared or None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.capturing or self.too_large:
            return
        if self.writer.size + (end - start) > self.limit:
            self.too_large = True
            return
        self.writer.add(data[start:end])

    def on_part_end(self) -> None:
        self.capturing = False


async def _multipart(
    stream: AsyncIterator[bytes], boundary: bytes, writer: _Writer, limit: int
) -> tuple[str | None, str | None]:
    field = _FileField(writer, limit)
    callbacks = {name: getattr(field, name) for name in dir(field) if name.startswith("on_")}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    except FormParserError as exc:  # a boundary above RFC 2046's 70 characters by far
        raise BadUpload(f"broken multipart body: {exc}") from exc
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if field.too_large or received > limit + _MULTIPART_OVERHEAD:
            await _drain(stream, received)
            raise TooLarge(limit)
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise BadUpload(f"broken multipart body: {exc}") from exc
        await writer.flush()
    if field.too_large:
        raise TooLarge(limit)
    try:
        parser.finalize()
    except MultipartParseError as exc:
        raise BadUpload(f"broken multipart body: {exc}") from exc
    if not field.found:
        raise BadUpload("the multipart body has no field named 'file'")
    if field.repeated:
        raise BadUpload("the multipart body has more than one field named 'file'; send one file per request")
    return field.name, field.declared
