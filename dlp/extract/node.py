"""What every extraction handler works with: a source blob, a node in the item's tree,
and the per-item context that enforces the limits.

A `Blob` is a seekable byte source with a known size: the item itself, or a member
decompressed into an anonymous spool (memory first, then an unnamed temporary file) so
that memory stays bounded whatever the member's size. Nothing is ever written under a
name the item supplies. A `Node` is one place in the tree (its location, name, depth and
the flags already known about it). The `Context` counts files, expanded bytes and time
for the whole item and raises `LimitReached` when a bound is hit.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from dlp.model import Limits, Part, Table

__all__ = [
    "CORRUPT",
    "ENCRYPTED",
    "LIMIT_DEPTH",
    "LIMIT_FILES",
    "LIMIT_RATIO",
    "LIMIT_SIZE",
    "LIMIT_TIME",
    "TRUNCATED",
    "UNSUPPORTED",
    "Blob",
    "Context",
    "LimitReached",
    "Node",
]

ENCRYPTED = "encrypted"
CORRUPT = "corrupt"
UNSUPPORTED = "unsupported"
TRUNCATED = "truncated"
LIMIT_DEPTH = "limit:depth"
LIMIT_FILES = "limit:files"
LIMIT_SIZE = "limit:size"
LIMIT_RATIO = "limit:ratio"
LIMIT_TIME = "limit:time"

SPOOL_MEMORY = 1024 * 1024
BLOCK = 256 * 1024
RATIO_FLOOR = 1024 * 1024


class LimitReached(Exception):
    """A limit stopped the current branch; `flag` names which one."""

    def __init__(self, flag: str) -> None:
        super().__init__(flag)
        self.flag = flag


class Blob:
    """A seekable binary source with a known size (the item, or a spooled member)."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.stream = stream
        self.size = size

    @classmethod
    def of_bytes(cls, data: bytes) -> Blob:
        """A blob over bytes already in memory."""
        return cls(io.BytesIO(data), len(data))

    @classmethod
    def copy_of(cls, stream: IO[bytes], size: int) -> Blob:
        """A spooled copy of the next `size` bytes of `stream` (a slice of a store the
        limits were already enforced on)."""
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        left = size
        while left > 0:
            block = stream.read(min(BLOCK, left))
            if not block:
                break
            spool.write(block)
            left -= len(block)
        spool.seek(0)
        return cls(spool, size - left)

    def head(self, count: int) -> bytes:
        """The first `count` bytes (or fewer), leaving the stream at the start."""
        self.stream.seek(0)
        data = self.stream.read(count)
        self.stream.seek(0)
        return data

    def close(self) -> None:
        """Release the spool (memory or temporary file)."""
        self.stream.close()


@dataclass(frozen=True)
class Node:
    """One place in an item's tree: where it is, what it is called, how deep, and the
    flags already known about it (set while it was unpacked from its parent)."""

    location: str
    blob: Blob
    name: str | None
    depth: int
    mime: str = "application/octet-stream"
    charset: str | None = None
    flags: tuple[str, ...] = ()

    def part(
        self,
        text: str,
        flags: tuple[str, ...] = (),
        *,
        offset: int = 0,
        table: Table | None = None,
        location: str | None = None,
        mime: str | None = None,
    ) -> Part:
        """A part of this node, carrying the node's own flags as well as `flags`.

        A node cut short by a limit while it was unpacked is not also called corrupt
        when its (partial) content fails to parse: the limit flag says why."""
        merged_set = set(self.flags) | set(flags)
        if CORRUPT in merged_set and any(flag.startswith("limit:") for flag in self.flags):
            merged_set.discard(CORRUPT)
        merged = tuple(sorted(merged_set))
        return Part(
            location=location or self.location,
            type=mime or self.mime,
            size=self.blob.size,
            text=text,
            flags=merged,
            name=self.name,
            table=table,
            offset=offset,
        )


@dataclass
class Context:
    """Per-item state: the limits, the deadline, files seen and bytes expanded so far.

    `descend` is set by the walker: handlers call it to extract a child node.
    """

    limits: Limits
    descend: Callable[[Node], Iterator[Part]]
    deadline: float = 0.0
    files: int = 0
    expanded: int = 0
    exhausted: set[str] = field(default_factory=set)
    item_size: int = 0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.limits.max_seconds

    def remaining(self) -> float:
        """Seconds left before the item's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def check_time(self) -> None:
        """Raise `LimitReached(limit:time)` once the item's deadline has passed."""
        if time.monotonic() > self.deadline:
            self.exhausted.add(LIMIT_TIME)
            raise LimitReached(LIMIT_TIME)

    def count_file(self) -> None:
        """Count one more member or MIME part; raise `LimitReached(limit:files)` past the bound."""
        self.files += 1
        if self.files > self.limits.max_files:
            self.exhausted.add(LIMIT_FILES)
            raise LimitReached(LIMIT_FILES)

    def read_spooled(
        self,
        blocks: Iterator[bytes],
        location: str,
        depth: int,
        mime: str,
        charset: str | None,
        read: Callable[[Node, Context], Iterator[Part]],
    ) -> Iterator[Part]:
        """A piece of a container (a message body held in properties, not a file) counted as
        one more file, spooled under the limits, read by `read` at `location`, then released."""
        self.count_file()
        blob, flags = self.spool(blocks)
        child = Node(location, blob, None, depth, mime, charset, flags)
        try:
            yield from read(child, self)
        finally:
            blob.close()

    def read_capped(self, node: Node) -> tuple[bytes, tuple[str, ...]]:
        """A node's bytes for a reader that parses them whole (MIME, RTF, CMS): at most the
        per-member limit, with `limit:size` when the node is larger and was cut."""
        stream = node.blob.stream
        stream.seek(0)
        data = stream.read(self.limits.max_member_bytes + 1)
        if len(data) > self.limits.max_member_bytes:
            return data[: self.limits.max_member_bytes], (LIMIT_SIZE,)
        return data, ()

    def spool(
        self,
        blocks: Iterator[bytes],
        consumed: Callable[[], int] | None = None,
        declared: int | None = None,
    ) -> tuple[Blob, tuple[str, ...]]:
        """Copy decompressed or decoded blocks into an anonymous spool, enforcing the
        per-member size, per-item expanded size, expansion ratio and time limits while
        copying. The ratio holds per member (against `consumed`, the compressed bytes read
        so far) and for the whole item (all expanded bytes against the item's size).
        Returns the blob (what was read before a limit hit) and the flags."""
        limits = self.limits
        if LIMIT_RATIO in self.exhausted:
            return Blob.of_bytes(b""), (LIMIT_RATIO,)
        item_budget = limits.max_ratio * max(self.item_size, 1)
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        size = 0
        flags: list[str] = []
        try:
            for block in blocks:
                room = min(limits.max_member_bytes - size, limits.max_total_bytes - self.expanded)
                if len(block) > room:
                    spool.write(block[: max(room, 0)])
                    size += max(room, 0)
                    self.expanded += max(room, 0)
                    if self.expanded >= limits.max_total_bytes:
                        self.exhausted.add(LIMIT_SIZE)
                    flags.append(LIMIT_SIZE)
                    break
                spool.write(block)
                size += len(block)
                self.expanded += len(block)
                if (
                    consumed is not None
                    and size > RATIO_FLOOR
                    and size > limits.max_ratio * max(consumed(), 1)
                ):
                    flags.append(LIMIT_RATIO)
                    break
                if self.expanded > RATIO_FLOOR and self.expanded > item_budget:
                    flags.append(LIMIT_RATIO)
                    self.exhausted.add(LIMIT_RATIO)
                    break
                if time.monotonic() > self.deadline:
                    flags.append(LIMIT_TIME)
                    self.exhausted.add(LIMIT_TIME)
                    break
        except LimitReached as hit:
            flags.append(hit.flag)
        except Exception:
            flags.append(CORRUPT)
        if declared is not None and size < declared and not flags:
            flags.append(TRUNCATED)
        spool.seek(0)
        return Blob(spool, size), tuple(flags)
