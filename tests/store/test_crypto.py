"""Chunked envelope encryption: round trips at chunk boundaries, tamper and key checks."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.errors import StoreError
from dlp.store.crypto import CHUNK_SIZE, decrypt_stream, encrypt_stream, new_data_key, unwrap_key, wrap_key


def _roundtrip(key: bytes, item_id: str, chunks: list[bytes]) -> tuple[bytes, bytes]:
    out = io.BytesIO()
    size = encrypt_stream(key, item_id, chunks, out)
    assert size == sum(len(c) for c in chunks)
    sealed = out.getvalue()
    return sealed, b"".join(decrypt_stream(key, item_id, io.BytesIO(sealed)))


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 2 * CHUNK_SIZE + 7]
)
def test_roundtrip_at_chunk_boundaries(size: int) -> None:
    key = new_data_key()
    data = os.urandom(size)
    pieces = [data[i : i + 300_000] for i in range(0, size, 300_000)] or [b""]
    sealed, plain = _roundtrip(key, "ITEM1", pieces)
    assert plain == data
    assert len(sealed) == 9 + size + 16 * (size // CHUNK_SIZE + (1 if size % CHUNK_SIZE or not size else 0))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=2000), max_size=5))
def test_roundtrip_any_chunking(chunks: list[bytes]) -> None:
    key = new_data_key()
    assert _roundtrip(key, "X", chunks)[1] == b"".join(chunks)


def _sealed(size: int) -> tuple[bytes, bytes]:
    key = new_data_key()
    out = io.BytesIO()
    encrypt_stream(key, "ITEM1", [os.urandom(size)], out)
    return key, out.getvalue()


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-1], id="truncated-tag"),
        pytest.param(lambda b: b[: 9 + CHUNK_SIZE + 16], id="dropped-final-chunk"),
        pytest.param(lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], id="flipped-bit"),
        pytest.param(lambda b: b"XXXX" + b[4:], id="bad-magic"),
        pytest.param(lambda b: b[:3], id="no-header"),
    ],
)
def test_damage_is_detected(damage: object) -> None:
    key, sealed = _sealed(CHUNK_SIZE + 100)
    with pytest.raises(StoreError):
        b"".join(decrypt_stream(key, "ITEM1", io.BytesIO(damage(sealed))))  # type: ignore[operator]


def test_content_is_bound_to_its_item_and_key() -> None:
    key, sealed = _sealed(10)
    with pytest.raises(StoreError):
        b"".join(decrypt_stream(key, "ITEM2", io.BytesIO(sealed)))
    with pytest.raises(StoreError):
        b"".join(decrypt_stream(new_data_key(), "ITEM1", io.BytesIO(sealed)))


def test_wrapped_key_roundtrip_and_binding() -> None:
    master, data_key = new_data_key(), new_data_key()
    wrapped = wrap_key(master, data_key, "A")
    assert data_key not in wrapped
    assert unwrap_key(master, wrapped, "A") == data_key
    with pytest.raises(StoreError):
        unwrap_key(master, wrapped, "B")
    with pytest.raises(StoreError):
        unwrap_key(new_data_key(), wrapped, "A")
