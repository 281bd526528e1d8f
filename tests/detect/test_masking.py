"""Masked previews keep only what identifies the kind of value; hashes are keyed."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.detect.masking import MASKS, NORMALISERS, KeyedHasher, keyed_hash


@pytest.mark.parametrize(
    ("mask", "value", "preview"),
    [
        ("card", "4111 1111 1111 1111", "4111 **** **** 1111"),
        ("card", "4111-1111-1111-1111", "4111-****-****-1111"),
        ("card", "378282246310005", "3782*******0005"),
        ("card", "12345678", "********"),
        ("last4", "123-45-6789", "***-**-6789"),
        ("last4", "GB82 WEST 1234 5698 7654 32", "**** **** **** **** **54 32"),
        ("last4", "12345", "*****"),
        ("email", "john.doe@example.com", "j***@example.com"),
        ("email", "@example.com", "***"),
        ("prefix", "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", "ghp_********"),
        ("prefix", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_********"),
        ("prefix", "AKIA2OGYBAH6STMMNXNN", "AKIA********"),
        ("prefix", "-----BEGIN RSA PRIVATE KEY-----\nMIIE", "-----BEGIN RSA PRIVATE KEY----- ****"),
    ],
)
def test_preview(mask: str, value: str, preview: str) -> None:
    assert MASKS[mask](value) == preview


@pytest.mark.parametrize(
    ("normaliser", "value", "normalised"),
    [
        ("digits", "4111 1111-1111.1111", "4111111111111111"),
        ("digits", "+1 (415) 555-1234", "14155551234"),
        ("alnum-upper", "gb82 west 1234", "GB82WEST1234"),
        ("lower", " Ann@Example.COM ", "ann@example.com"),
        ("exact", "AbC", "AbC"),
    ],
)
def test_normalisers(normaliser: str, value: str, normalised: str) -> None:
    assert NORMALISERS[normaliser](value) == normalised


def test_keyed_hash_is_hmac_sha256_of_the_normalised_value() -> None:
    expected = hmac.new(b"key", b"4111111111111111", hashlib.sha256).hexdigest()
    assert keyed_hash(b"key", "4111111111111111") == f"hmac-sha256:{expected}"
    assert keyed_hash(b"other", "4111111111111111") != keyed_hash(b"key", "4111111111111111")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=100), st.text(max_size=40))
def test_keyed_hasher_equals_keyed_hash(key: bytes, value: str) -> None:
    assert KeyedHasher(key)(value) == keyed_hash(key, value)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789", min_size=9, max_size=19), st.sampled_from(["card", "last4"]))
def test_preview_hides_most_digits(digits: str, mask: str) -> None:
    preview = MASKS[mask](digits)
    assert len(preview) == len(digits)
    assert preview.count("*") >= len(digits) - 8
    assert preview != digits
