"""Archives: ZIP (our own limited reader), TAR, single compressed streams (gzip, bzip2,
xz) and 7z (py7zr). Each member is decompressed into an anonymous spool under the
item's limits, then extracted in turn, one level deeper.

Member names only ever become parts of locations (control characters replaced): nothing
is written under a name the item supplies.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from dlp.extract import office
from dlp.extract.members import child_node, zip_members
from dlp.extract.node import (
    CORRUPT,
    ENCRYPTED,
    LIMIT_FILES,
    LIMIT_RATIO,
    LIMIT_SIZE,
    LIMIT_TIME,
    RATIO_FLOOR,
    Blob,
    Context,
    LimitReached,
    Node,
)
from dlp.extract.sniff import HEAD_BYTES, Kind, sniff
from dlp.extract.zipreader import ZipArchive, ZipError
from dlp.model import Part

__all__ = ["read_7z", "read_compressed", "read_tar", "read_zip"]

_BLOCK = 256 * 1024
_SEVEN_ZIP_BLOCK = 4 * 1024 * 1024


def read_zip(node: Node, ctx: Context) -> Iterator[Part]:
    """A ZIP archive, or an Office/OpenDocument file (which are ZIP archives)."""
    try:
        archive = ZipArchive(node.blob.stream, node.blob.size, ctx.limits.max_files)
    except ZipError:
        yield node.part("", (CORRUPT,), mime="application/zip")
        return
    flavour = office.classify(archive)
    if flavour is not None:
        yield from office.read_office(node, ctx, archive, flavour)
        return
    yield node.part("", (LIMIT_FILES,) if archive.truncated else (), mime="application/zip")
    yield from zip_members(node, ctx, archive, archive.entries)


def read_tar(node: Node, ctx: Context) -> Iterator[Part]:
    """A TAR archive: regular files only (links, devices and directories carry no data)."""
    stream = node.blob.stream
    stream.seek(0)
    try:
        tar = tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115
    except (tarfile.TarError, OSError, ValueError, EOFError):
        yield node.part("", (CORRUPT,), mime="application/x-tar")
        return
    yield node.part("", mime="application/x-tar")
    with tar:
        while True:
            ctx.check_time()
            try:
                member = tar.next()
            except (tarfile.TarError, OSError, ValueError, EOFError):
                yield node.part("", (CORRUPT,), mime="application/x-tar")
                return
            if member is None:
                return
            if not member.isreg():
                continue
            ctx.count_file()
            reader = tar.extractfile(member)
            if reader is None:
                continue
            blob, flags = ctx.spool(_read_blocks(reader), declared=member.size)
            child = child_node(node, member.name, blob, flags)
            try:
                yield from ctx.descend(child)
            finally:
                blob.close()


def _read_blocks(reader: IO[bytes] | gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile) -> Iterator[bytes]:
    while True:
        block = reader.read(_BLOCK)
        if not block:
            return
        yield block


_OPENERS: dict[str, Callable[[IO[bytes]], gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile]] = {
    Kind.GZIP: lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    Kind.BZIP2: lambda f: bz2.BZ2File(f, mode="rb"),
    Kind.XZ: lambda f: lzma.LZMAFile(f, mode="rb"),  # noqa: SIM115
}
_SUFFIXES = re.compile(r"\.(t?gz|t?bz2?|t?xz|tbz|z|lzma|tlz)$", re.IGNORECASE)


def read_compressed(node: Node, ctx: Context, kind: str) -> Iterator[Part]:
    """A gzip, bzip2, xz or legacy LZMA (`.lzma`, `.tlz`, read by the same opener as xz)
    stream: decompressed under the limits, then extracted; a compressed TAR lists its
    members directly under this node."""
    stream = node.blob.stream
    stream.seek(0)
    reader = _OPENERS[kind](stream)
    try:
        blob, flags = ctx.spool(_read_blocks(reader), consumed=stream.tell)
    finally:
        reader.close()
    try:
        inner_kind, _ = sniff(blob.head(HEAD_BYTES))
        if inner_kind == Kind.TAR:
            inner = Node(node.location, blob, node.name, node.depth + 1, "application/x-tar", flags=flags)
            yield from read_tar(inner, ctx)
            return
        yield node.part("")
        yield from ctx.descend(child_node(node, _inner_name(node.name), blob, flags))
    finally:
        blob.close()


def _inner_name(name: str | None) -> str:
    if not name:
        return "content"
    match = _SUFFIXES.search(name)
    if match is None:
        return name + ".out"
    inner = name[: match.start()]
    return inner + ".tar" if match.group(1).lower().startswith("t") else inner


def read_7z(node: Node, ctx: Context) -> Iterator[Part]:
    """A 7z archive through py7zr: members decompressed into one anonymous temporary
    file under the limits, then extracted one by one; password-protected ones are flagged."""
    import py7zr
    import py7zr.py7zr

    py7zr.py7zr.get_memory_limit = _seven_zip_block  # type: ignore[attr-defined]
    stream = node.blob.stream
    stream.seek(0)
    with tempfile.TemporaryFile() as store:
        factory = _SevenZipStore(store, ctx, node.blob.size)
        flags: tuple[str, ...] = ()
        try:
            with py7zr.SevenZipFile(stream, mode="r") as archive:
                if archive.needs_password():
                    yield node.part("", (ENCRYPTED,), mime="application/x-7z-compressed")
                    return
                archive.extract(factory=factory)
        except LimitReached as hit:
            flags = (hit.flag,)
        except py7zr.exceptions.PasswordRequired:
            flags = (ENCRYPTED,)
        except Exception:
            flags = (CORRUPT,)
        yield node.part("", flags, mime="application/x-7z-compressed")
        for name, start, size, member_flags in factory.members:
            ctx.check_time()
            store.seek(start)
            blob = Blob.copy_of(store, size)
            child = child_node(node, name, blob, member_flags)
            try:
                yield from ctx.descend(child)
            finally:
                blob.close()


def _seven_zip_block() -> int:
    """The size of the blocks py7zr decompresses a member in (its module function, replaced
    in `read_7z`). Its own is up to 128 MB, held whole before our writer sees it: a 7z of
    zeros took a worker to 440 MB, and a member whose first block passed the per-member
    limit was kept empty instead of cut at the limit."""
    return _SEVEN_ZIP_BLOCK


class _SevenZipStore:
    """A py7zr writer factory: every member goes to one anonymous file, with the limits
    enforced on each write (raising stops py7zr)."""

    def __init__(self, store: IO[bytes], ctx: Context, packed: int) -> None:
        self.store = store
        self.ctx = ctx
        self.packed = packed
        self.written = 0
        self.members: list[tuple[str, int, int, tuple[str, ...]]] = []

    def create(self, filename: str) -> _SevenZipMember:
        self.ctx.count_file()
        self.ctx.check_time()
        member = _SevenZipMember(self, filename, self.store.seek(0, 2))
        return member


class _SevenZipMember:
    """One member being written by py7zr."""

    def __init__(self, owner: _SevenZipStore, name: str, start: int) -> None:
        self.owner = owner
        self.name = name
        self.start = start
        self.length = 0
        self.closed = False

    def write(self, data: bytes | bytearray) -> int:
        owner, ctx = self.owner, self.owner.ctx
        limits = ctx.limits
        flag = None
        if (
            self.length + len(data) > limits.max_member_bytes
            or ctx.expanded + len(data) > limits.max_total_bytes
        ):
            flag = LIMIT_SIZE
        elif owner.written > RATIO_FLOOR and owner.written > limits.max_ratio * max(owner.packed, 1):
            flag = LIMIT_RATIO
        elif ctx.remaining() <= 0:
            flag = LIMIT_TIME
        if flag is not None:
            self.close((flag,))
            raise LimitReached(flag)
        owner.store.seek(self.start + self.length)
        owner.store.write(data)
        self.length += len(data)
        owner.written += len(data)
        ctx.expanded += len(data)
        return len(data)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.length

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.length

    def close(self, flags: tuple[str, ...] = ()) -> None:
        if not self.closed:
            self.closed = True
            self.owner.members.append((self.name, self.start, self.length, flags))
