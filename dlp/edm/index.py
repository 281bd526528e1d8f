"""Exact-data-match index files: keyed hashes of CRM values grouped by record, no plaintext.

File layout (one file per index, replaced atomically with `os.replace`):

    b"DLPEDM1\\n" | u64 little-endian length of the JSON meta | JSON meta | zero padding to 8
    | hashes: u64[n], sorted | records: u32[n] | columns: u8[n]

`n` is the number of indexed values (records x columns, minus empty cells). Loading maps
the file (numpy memmap), so memory grows by 13 bytes per value (39 bytes per 3-column
record), touched lazily, and lookups are one vectorised binary search per part.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import tempfile
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dlp.edm.normalise import KINDS, infer_kind, keyed_hash, keyed_hasher, normalise
from dlp.errors import DlpError

__all__ = ["EdmColumn", "EdmIndex", "IndexStats", "build_index", "index_path", "parse_columns"]

MAGIC = b"DLPEDM1\n"
SUFFIX = ".edm"
MAX_RECORDS = 2**32 - 1
_DIGIT_KINDS = frozenset({"phone", "number"})
_BATCH = 1 << 16
"""Rows normalised and hashed per column at a time; sorted values written per chunk."""
MAX_FANOUT = 64
"""A value shared by more records than this (a switchboard number, a generic mailbox)
identifies nobody: lookups skip it."""


class EdmError(DlpError):
    """An EDM index could not be built or read."""


@dataclass(frozen=True)
class EdmColumn:
    """One indexed column: its header name and the kind that decides normalisation."""

    name: str
    kind: str


@dataclass(frozen=True)
class IndexStats:
    """What a build produced, for the command's summary."""

    records: int
    values: int
    seconds: float
    path: Path


def index_path(folder: Path, name: str) -> Path:
    """Where the index called `name` lives under the EDM folder."""
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise EdmError(f"index name '{name}' must be letters, digits, '-' or '_'")
    return folder / f"{name}{SUFFIX}"


def parse_columns(spec: str) -> list[tuple[str, str | None]]:
    """Read `--columns Email,Phone:phone,Full Name:name` into (header, kind or None)."""
    out: list[tuple[str, str | None]] = []
    for chunk in spec.split(","):
        name, _, kind = chunk.strip().partition(":")
        if not name:
            continue
        if kind and kind not in KINDS:
            raise EdmError(f"column '{name}': unknown kind '{kind}' (one of {', '.join(KINDS)})")
        out.append((name, kind or None))
    if not out:
        raise EdmError("--columns names no column")
    return out


def build_index(
    source: Path,
    name: str,
    columns: Sequence[tuple[str, str | None]],
    secret: bytes,
    folder: Path,
    region: str = "US",
) -> IndexStats:
    """Index the chosen columns of a CSV/TSV export; write only keyed hashes, atomically."""
    started = time.monotonic()
    target = index_path(folder, name)
    hashes = bytearray()
    records: array[int] = array("I")
    column_ids: array[int] = array("B")
    digit_widths: dict[str, tuple[int, int]] = {}
    with source.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        rows = csv.reader(handle, dialect=_dialect(source, handle))
        header = next(rows, None)
        if header is None:
            raise EdmError(f"{source}: empty file, no header row")
        chosen = _resolve_columns(header, columns, source)
        hashers = [keyed_hasher(secret, column.kind) for _, column in chosen]
        record = 0
        while chunk := list(itertools.islice(rows, _BATCH)):
            batch = [row for row in chunk if row]
            if record + len(batch) > MAX_RECORDS:
                raise EdmError(f"{source}: more than {MAX_RECORDS} records")
            for column_id, (position, column) in enumerate(chosen):
                kind = column.kind
                cells = (row[position] if position < len(row) else "" for row in batch)
                values = [normalise(kind, cell, region) for cell in cells]
                kept = [(record + i, value) for i, value in enumerate(values) if value is not None]
                digest = hashers[column_id]
                hashes += b"".join([digest(value) for _, value in kept])
                records.extend([i for i, _ in kept])
                column_ids.frombytes(bytes([column_id]) * len(kept))
                if kind in _DIGIT_KINDS and kept:
                    _widen(digit_widths, kind, [len(value) - value.startswith("+") for _, value in kept])
            record += len(batch)
    meta = {
        "name": name,
        "columns": [{"name": c.name, "kind": c.kind} for _, c in chosen],
        "records": record,
        "values": len(hashes) // 8,
        "region": region,
        "digit_widths": digit_widths,
        "key_id": keyed_hash(secret, "text", "dlp-edm-key-id"),
        "created": time.time(),
    }
    _write(target, meta, hashes, records, column_ids)
    return IndexStats(record, len(hashes) // 8, time.monotonic() - started, target)


def _widen(widths: dict[str, tuple[int, int]], kind: str, lengths: list[int]) -> None:
    """Extend a kind's (fewest, most) digits by a batch's normalised lengths."""
    low, high = widths.get(kind, (min(lengths), max(lengths)))
    widths[kind] = (min(low, *lengths), max(high, *lengths))


def _dialect(source: Path, handle: Any) -> type[csv.Dialect]:
    first = handle.readline()
    handle.seek(0)
    if source.suffix.lower() == ".tsv" or first.count("\t") > first.count(","):
        return csv.excel_tab
    return csv.excel


def _resolve_columns(
    header: list[str], columns: Sequence[tuple[str, str | None]], source: Path
) -> list[tuple[int, EdmColumn]]:
    folded = {h.strip().casefold(): i for i, h in enumerate(header)}
    chosen = []
    for wanted, kind in columns:
        position = folded.get(wanted.strip().casefold())
        if position is None:
            raise EdmError(f"{source}: no column '{wanted}' in the header ({', '.join(header)})")
        chosen.append((position, EdmColumn(header[position].strip(), kind or infer_kind(wanted))))
    if len(chosen) > 255:
        raise EdmError("at most 255 columns per index")
    return chosen


def _write(
    target: Path, meta: dict[str, Any], hashes: bytearray, records: array[int], cols: array[int]
) -> None:
    keys = np.frombuffer(hashes, dtype="<u8")
    order = np.argsort(keys)
    meta_bytes = json.dumps(meta).encode("utf-8")
    head = MAGIC + len(meta_bytes).to_bytes(8, "little") + meta_bytes
    head += b"\x00" * (-len(head) % 8)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(head)
            for array_ in (keys, np.frombuffer(records, dtype="<u4"), np.frombuffer(cols, dtype="u1")):
                for begin in range(0, len(order), _BATCH):
                    handle.write(array_[order[begin : begin + _BATCH]].tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _mapped(path: Path, dtype: str, offset: int, count: int) -> Any:
    """A read-only memory map of `count` values at `offset`, as a plain ndarray."""
    return np.memmap(path, dtype, "r", offset, (count,)).view(np.ndarray)


class EdmIndex:
    """A loaded (memory-mapped) index: look up hashes, get (record, column) pairs."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as handle:
            if handle.read(len(MAGIC)) != MAGIC:
                raise EdmError(f"{path}: not an EDM index")
            size = int.from_bytes(handle.read(8), "little")
            self.meta: dict[str, Any] = json.loads(handle.read(size))
        offset = len(MAGIC) + 8 + size
        offset += -offset % 8
        count = int(self.meta["values"])
        self.name: str = self.meta["name"]
        self.columns = tuple(EdmColumn(c["name"], c["kind"]) for c in self.meta["columns"])
        self.region: str = self.meta.get("region", "US")
        self.kinds = frozenset(c.kind for c in self.columns)
        self.widths: dict[str, tuple[int, int]] = {
            kind: (int(low), int(high)) for kind, (low, high) in self.meta.get("digit_widths", {}).items()
        }
        """Fewest and most digits of the normalised phones and numbers indexed (a "+" not
        counted): a candidate outside them cannot match and is not hashed."""
        # Plain ndarray views of the maps: indexing a np.memmap wraps every result in a memmap.
        self._hashes: npt.NDArray[np.uint64] = _mapped(path, "<u8", offset, count)
        self._records: npt.NDArray[np.uint32] = _mapped(path, "<u4", offset + 8 * count, count)
        self._columns: npt.NDArray[np.uint8] = _mapped(path, "u1", offset + 12 * count, count)

    def lookup(self, hashes: Sequence[int]) -> Iterator[tuple[int, int, int]]:
        """Every (hash, record, column) whose value hash is among `hashes` (distinct): one
        vectorised binary search for the first position of each, then a short walk."""
        count = len(self._hashes)
        if not hashes or count == 0:
            return
        wanted = np.array(hashes, dtype="<u8")
        left = np.searchsorted(self._hashes, wanted)
        present = self._hashes[np.minimum(left, count - 1)] == wanted
        for value_hash, start in zip(wanted[present].tolist(), left[present].tolist(), strict=True):
            stop = start + 1
            while stop < count and stop - start <= MAX_FANOUT and int(self._hashes[stop]) == value_hash:
                stop += 1
            if stop - start > MAX_FANOUT:
                continue
            for position in range(start, stop):
                yield value_hash, int(self._records[position]), int(self._columns[position])
