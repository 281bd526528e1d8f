"""A ZIP reader that trusts nothing: our own parsing of the end record, ZIP64 records and
central directory (at most `max_files` entries are read), a check that no two entries'
data overlap (David Fifield's overlapping-entry bomb, which Python 3.11's zipfile does
not detect), and member data decompressed block by block (bounded output per call) so
the caller can enforce its size, ratio and time limits while decompressing.

Supported methods: stored, deflate, bzip2, LZMA (7-Zip and WinZip write it on request);
encrypted entries (traditional or AES) are reported as such, other methods as unsupported.
"""

from __future__ import annotations

import bz2
import itertools
import lzma
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

__all__ = ["ZipArchive", "ZipEntry", "ZipError"]

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_LOCAL = struct.Struct("<4s2B4HL2L2H")
_MAX_COMMENT = 65535
_READ = 64 * 1024
_READ_BZIP2 = 4096
_OUT = 256 * 1024
_MAX_LZMA_DICTIONARY = 1 << 30

STORED, DEFLATED, BZIP2, LZMA, AES = 0, 8, 12, 14, 99
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG = 0x40
_FLAG_UTF8 = 0x800


class ZipError(Exception):
    """The archive's structure is damaged or hostile."""


@dataclass(frozen=True)
class ZipEntry:
    """One central directory entry, with the offset of its data once checked."""

    name: str
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int = 0

    @property
    def is_dir(self) -> bool:
        """Directory entries carry no data."""
        return self.name.endswith("/")

    @property
    def encrypted(self) -> bool:
        """Password-protected (traditional PKWARE, strong or AES encryption)."""
        return bool(self.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG)) or self.method == AES

    @property
    def supported(self) -> bool:
        """Whether we can decompress this entry's method."""
        return self.method in (STORED, DEFLATED, BZIP2, LZMA)


class ZipArchive:
    """The entries of a ZIP archive read from a seekable stream.

    `truncated` is true when the central directory holds more entries than were read.
    """

    def __init__(self, stream: IO[bytes], size: int, max_entries: int) -> None:
        self.stream = stream
        self.size = size
        self.truncated = False
        cd_offset, cd_size, count, end_at = self._end_record()
        base = end_at - cd_size - cd_offset
        if base < 0 or cd_offset + base < 0:
            raise ZipError("central directory outside the archive")
        self.entries = self._central(cd_offset + base, cd_size, min(count, max_entries + 1), base)
        if count > max_entries:
            self.truncated = True
            self.entries = self.entries[:max_entries]
        self.entries = self._locate(self.entries, cd_offset + base)

    def _end_record(self) -> tuple[int, int, int, int]:
        tail_size = min(self.size, _EOCD.size + _MAX_COMMENT)
        self.stream.seek(self.size - tail_size)
        tail = self.stream.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        while at >= 0 and at + _EOCD.size > len(tail):
            at = tail.rfind(b"PK\x05\x06", 0, at)
        if at < 0:
            raise ZipError("no end of central directory record")
        _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, at)
        end_at = self.size - tail_size + at
        if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
            return self._zip64(end_at)
        return cd_offset, cd_size, count, end_at

    def _zip64(self, end_at: int) -> tuple[int, int, int, int]:
        at = end_at - _ZIP64_LOCATOR.size
        if at < 0:
            raise ZipError("no ZIP64 locator")
        self.stream.seek(at)
        sig, _, record_at, _ = _ZIP64_LOCATOR.unpack(self.stream.read(_ZIP64_LOCATOR.size))
        if sig != b"PK\x06\x07":
            raise ZipError("bad ZIP64 locator")
        record_at = at - _ZIP64_EOCD.size
        self.stream.seek(record_at)
        record = self.stream.read(_ZIP64_EOCD.size)
        if len(record) != _ZIP64_EOCD.size or not record.startswith(b"PK\x06\x06"):
            raise ZipError("bad ZIP64 end record")
        fields = _ZIP64_EOCD.unpack(record)
        return fields[9], fields[8], fields[7], record_at

    def _central(self, start: int, cd_size: int, count: int, base: int) -> list[ZipEntry]:
        if start + cd_size > self.size:
            raise ZipError("central directory past the end")
        self.stream.seek(start)
        entries: list[ZipEntry] = []
        for _ in range(count):
            fixed = self.stream.read(_CENTRAL.size)
            if len(fixed) != _CENTRAL.size or not fixed.startswith(b"PK\x01\x02"):
                raise ZipError("bad central directory entry")
            f = _CENTRAL.unpack(fixed)
            flags, method, crc, csize, usize = f[5], f[6], f[9], f[10], f[11]
            name_len, extra_len, comment_len, offset = f[12], f[13], f[14], f[18]
            raw_name = self.stream.read(name_len)
            extra = self.stream.read(extra_len)
            self.stream.seek(comment_len, 1)
            usize, csize, offset = _zip64_extra(extra, usize, csize, offset)
            name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
            entries.append(ZipEntry(name, method, flags, crc, csize, usize, offset + base))
        return entries

    def _locate(self, entries: list[ZipEntry], cd_start: int) -> list[ZipEntry]:
        """Read each local header, find where its data starts, and refuse archives whose
        entries overlap one another or the central directory."""
        located: list[ZipEntry] = []
        for entry in entries:
            self.stream.seek(entry.header_offset)
            local = self.stream.read(_LOCAL.size)
            if len(local) != _LOCAL.size or not local.startswith(b"PK\x03\x04"):
                raise ZipError("bad local header")
            name_len, extra_len = _LOCAL.unpack(local)[10:12]
            data_offset = entry.header_offset + _LOCAL.size + name_len + extra_len
            if data_offset + entry.compressed_size > cd_start:
                raise ZipError("entry data runs into the central directory")
            located.append(
                ZipEntry(
                    entry.name,
                    entry.method,
                    entry.flags,
                    entry.crc,
                    entry.compressed_size,
                    entry.size,
                    entry.header_offset,
                    data_offset,
                )
            )
        spans = sorted((e.header_offset, e.data_offset + e.compressed_size) for e in located)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                raise ZipError("overlapping entries")
        return located

    def blocks(self, entry: ZipEntry, progress: list[int]) -> Iterator[bytes]:
        """The entry's decompressed bytes in blocks of bounded size. `progress[0]` holds
        the compressed bytes consumed so far (for the caller's ratio check). Raises
        ZipError on a CRC mismatch or damaged data once the entry is fully read."""
        crc = 0
        for block in _decompressed(entry.method, self._raw(entry), progress):
            crc = zlib.crc32(block, crc)
            yield block
        if crc != entry.crc:
            raise ZipError("CRC mismatch")

    def _raw(self, entry: ZipEntry) -> Iterator[bytes]:
        left = entry.compressed_size
        position = entry.data_offset
        step = _READ if entry.method not in (BZIP2, LZMA) else _READ_BZIP2
        while left > 0:
            self.stream.seek(position)
            data = self.stream.read(min(step, left))
            if not data:
                raise ZipError("entry data cut short")
            position += len(data)
            left -= len(data)
            yield data

    def read_small(self, entry: ZipEntry, limit: int) -> bytes:
        """A small member (at most `limit` bytes) read whole, e.g. an ODF `mimetype`."""
        out = bytearray()
        for block in self.blocks(entry, [0]):
            out += block
            if len(out) > limit:
                break
        return bytes(out[:limit])


def _decompressed(method: int, raw: Iterator[bytes], progress: list[int]) -> Iterator[bytes]:
    """Decompress `raw` blocks, never producing more than `_OUT` bytes per step, keeping
    `progress[0]` at the compressed bytes actually consumed."""
    if method == STORED:
        for data in raw:
            progress[0] += len(data)
            yield data
    elif method == DEFLATED:
        inflater = zlib.decompressobj(-15)
        for data in raw:
            while data:
                out = inflater.decompress(data, _OUT)
                progress[0] += len(data) - len(inflater.unconsumed_tail)
                data = inflater.unconsumed_tail
                if out:
                    yield out
                elif data:
                    raise ZipError("deflate stream made no progress")
        rest = inflater.flush()
        if rest:
            yield rest
    elif method in (BZIP2, LZMA):
        unbzip: bz2.BZ2Decompressor | lzma.LZMADecompressor
        if method == BZIP2:
            unbzip = bz2.BZ2Decompressor()
        else:
            unbzip, raw = _lzma_start(raw, progress)
        for data in raw:
            if unbzip.eof:
                break
            progress[0] += len(data)
            out = unbzip.decompress(data, _OUT)
            while True:
                if out:
                    yield out
                if unbzip.eof or unbzip.needs_input:
                    break
                out = unbzip.decompress(b"", _OUT)
    else:
        raise ZipError(f"unsupported method {method}")


def _lzma_start(raw: Iterator[bytes], progress: list[int]) -> tuple[lzma.LZMADecompressor, Iterator[bytes]]:
    """A raw LZMA1 decompressor set up from the entry's LZMA header (APPNOTE 5.8.8: a
    version, the properties' size, then lc/lp/pb and the dictionary size) taken off the
    front of `raw`, and the compressed data that follows it."""
    head = b""
    for data in raw:
        head += data
        if len(head) >= 4 and len(head) >= 4 + struct.unpack_from("<H", head, 2)[0]:
            break
    size = struct.unpack_from("<H", head, 2)[0] if len(head) >= 4 else 0
    if size < 5 or len(head) < 4 + size or head[4] >= 9 * 5 * 5:
        raise ZipError("damaged LZMA header")
    lc, rest = head[4] % 9, head[4] // 9
    dictionary = struct.unpack_from("<L", head, 5)[0]
    if dictionary > _MAX_LZMA_DICTIONARY:
        raise ZipError("LZMA dictionary too large")
    progress[0] += 4 + size
    lzma1 = {"id": lzma.FILTER_LZMA1, "dict_size": dictionary, "lc": lc, "lp": rest % 5, "pb": rest // 5}
    decompressor = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma1])
    return decompressor, itertools.chain([head[4 + size :]], raw)


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 0x0001:
            body = extra[at + 4 : at + 4 + length]
            values = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            if usize == 0xFFFFFFFF and values:
                usize = values.pop(0)
            if csize == 0xFFFFFFFF and values:
                csize = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        at += 4 + length
    return usize, csize, offset
