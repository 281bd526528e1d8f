"""Members of containers: where a member sits (its location) and how a ZIP entry is
decompressed into a spool under the item's limits before it is extracted in turn."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from dlp.extract.node import ENCRYPTED, LIMIT_RATIO, LIMIT_SIZE, RATIO_FLOOR, UNSUPPORTED, Blob, Context, Node
from dlp.extract.zipreader import ZipArchive, ZipEntry
from dlp.model import Part

__all__ = [
    "CUT_MARK",
    "child_node",
    "kept_name",
    "location_segment",
    "member_location",
    "spool_zip_entry",
    "zip_members",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_SEGMENT = 512
CUT_MARK = "\u2026"
"""Stands in front of a name cut to its last 512 characters. A detected value cut in two
there leaves a piece too short to detect: the scan drops what follows the mark, up to
the longest value it masks (see `dlp.pipeline`)."""


def kept_name(name: str) -> str:
    """A name as results keep it: its last 512 characters (with the extension), after
    `CUT_MARK` when it was longer (a TAR long name can be as large as the archive)."""
    return name if len(name) <= _MAX_SEGMENT else CUT_MARK + name[-_MAX_SEGMENT:]


def location_segment(name: str) -> str:
    """A name (of an item, member or attachment) as one segment of a location: the kept
    name (`kept_name`, cut first: a name can be as large as its container), control
    characters replaced by `?`."""
    return _CONTROL.sub("?", kept_name(name))


def member_location(parent: str, name: str) -> str:
    """`parent/name` with control characters replaced and the name's length bounded."""
    return f"{parent}/{location_segment(name.lstrip('/'))}"


def child_node(node: Node, name: str, blob: Blob, flags: tuple[str, ...]) -> Node:
    """The node of member `name` of `node`, one level deeper. The name is bounded
    (`kept_name`): a TAR long name can be as large as the archive, and each copy of it
    (detection in names, masking) cost a worker 100 MB."""
    return Node(
        location=member_location(node.location, name),
        blob=blob,
        name=kept_name(posixpath.basename(name.rstrip("/"))) or None,
        depth=node.depth + 1,
        flags=flags,
    )


def zip_members(node: Node, ctx: Context, archive: ZipArchive, entries: list[ZipEntry]) -> Iterator[Part]:
    """Extract the given entries of `archive` as children of `node`."""
    for entry in entries:
        if entry.is_dir:
            continue
        ctx.check_time()
        ctx.count_file()
        blob, flags = spool_zip_entry(ctx, archive, entry)
        child = child_node(node, entry.name, blob, flags)
        try:
            if blob.size == 0 and flags:
                yield child.part("")
            else:
                yield from ctx.descend(child)
        finally:
            blob.close()


def spool_zip_entry(ctx: Context, archive: ZipArchive, entry: ZipEntry) -> tuple[Blob, tuple[str, ...]]:
    """Decompress one entry into a spool under the limits; flags say what stopped it.

    Encrypted and unsupported entries, and entries whose declared sizes already break
    the ratio limit, are not decompressed at all."""
    if entry.encrypted:
        return Blob.of_bytes(b""), (ENCRYPTED,)
    if not entry.supported:
        return Blob.of_bytes(b""), (UNSUPPORTED,)
    if entry.size > RATIO_FLOOR and entry.size > ctx.limits.max_ratio * max(entry.compressed_size, 1):
        return Blob.of_bytes(b""), (LIMIT_RATIO,)
    progress = [0]
    blob, flags = ctx.spool(archive.blocks(entry, progress), consumed=lambda: progress[0])
    if entry.size > ctx.limits.max_member_bytes and LIMIT_SIZE not in flags:
        flags = (*flags, LIMIT_SIZE)
    return blob, flags
