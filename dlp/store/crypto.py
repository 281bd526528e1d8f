"""Encryption at rest for quarantined content: envelope AES-GCM, streamed in chunks.

Each item gets its own random data key; the data key is wrapped (AES-GCM) with the
installation's master key and kept beside the item's metadata. Forgetting the wrapped
key makes the item unreadable even if its file survives somewhere (a backup, a disk
block), so deletion and retention destroy the key material as well as the file.

Content is encrypted in chunks so that items of any size pass through bounded memory.
File layout: magic, chunk size, then for each chunk its ciphertext with the GCM tag.
Chunk `i` uses nonce = 4 zero bytes + i (8 bytes, big-endian) and associated data
`item id | i | final`, so chunks cannot be reordered, swapped between items or
truncated without the tag check failing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dlp.errors import StoreError

__all__ = [
    "CHUNK_SIZE",
    "decrypt_stream",
    "encrypt_stream",
    "new_data_key",
    "unwrap_key",
    "wrap_key",
]

CHUNK_SIZE = 1024 * 1024
_MAGIC = b"DLPQ\x01"
_HEADER = struct.Struct(">5sI")
_TAG = 16
_WRAP_NONCE = 12


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one item."""
    return AESGCM.generate_key(bit_length=256)


def wrap_key(master: bytes, data_key: bytes, item_id: str) -> bytes:
    """The data key encrypted with the master key, bound to the item id."""
    nonce = os.urandom(_WRAP_NONCE)
    return nonce + AESGCM(master).encrypt(nonce, data_key, b"wrap|" + item_id.encode())


def unwrap_key(master: bytes, wrapped: bytes, item_id: str) -> bytes:
    """The data key back from `wrap_key`; `StoreError` if it was tampered with."""
    try:
        nonce, sealed = wrapped[:_WRAP_NONCE], wrapped[_WRAP_NONCE:]
        return AESGCM(master).decrypt(nonce, sealed, b"wrap|" + item_id.encode())
    except InvalidTag as exc:
        raise StoreError(f"key material of quarantine item {item_id} does not verify") from exc


def _nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def _aad(item_id: str, index: int, final: bool) -> bytes:
    return f"{item_id}|{index}|{int(final)}".encode()


def encrypt_stream(key: bytes, item_id: str, chunks: Iterable[bytes], out: IO[bytes]) -> int:
    """Encrypt the plaintext `chunks` (any sizes) into `out`; returns the plaintext size."""
    aead = AESGCM(key)
    out.write(_HEADER.pack(_MAGIC, CHUNK_SIZE))
    buffer = bytearray()
    index = 0
    total = 0
    for chunk in chunks:
        total += len(chunk)
        buffer += chunk
        while len(buffer) > CHUNK_SIZE:
            block = bytes(buffer[:CHUNK_SIZE])
            del buffer[:CHUNK_SIZE]
            out.write(aead.encrypt(_nonce(index), block, _aad(item_id, index, False)))
            index += 1
    out.write(aead.encrypt(_nonce(index), bytes(buffer), _aad(item_id, index, True)))
    return total


def decrypt_stream(key: bytes, item_id: str, source: IO[bytes]) -> Iterator[bytes]:
    """Yield the plaintext chunks of a file written by `encrypt_stream`, verifying each."""
    header = source.read(_HEADER.size)
    if len(header) != _HEADER.size:
        raise StoreError(f"quarantine item {item_id} is truncated")
    magic, chunk_size = _HEADER.unpack(header)
    if magic != _MAGIC or not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise StoreError(f"quarantine item {item_id} has an unknown format")
    aead = AESGCM(key)
    index = 0
    block = source.read(chunk_size + _TAG)
    while True:
        following = source.read(chunk_size + _TAG) if len(block) == chunk_size + _TAG else b""
        final = not following
        try:
            yield aead.decrypt(_nonce(index), block, _aad(item_id, index, final))
        except InvalidTag as exc:
            raise StoreError(f"quarantine item {item_id} does not verify (chunk {index})") from exc
        if final:
            return
        block = following
        index += 1
