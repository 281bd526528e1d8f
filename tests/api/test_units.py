"""The API's small parts on their own: token cache, failure limiter, file names."""

from __future__ import annotations

import time

import pytest

from dlp.api.limiter import FailureLimiter
from dlp.api.spool import disposition_filename
from dlp.api.tokencache import TokenCache
from dlp.store import Role, TokenInfo

INFO = TokenInfo("01ID", "ci", Role.SCANNER, 0.0)


def test_token_cache_expires_and_clears() -> None:
    cache = TokenCache(ttl=0.05)
    cache.put("h1", INFO)
    assert cache.get("h1") == INFO
    assert cache.get("h2") is None
    time.sleep(0.06)
    assert cache.get("h1") is None
    cache.put("h1", INFO)
    cache.clear()
    assert cache.get("h1") is None


def test_token_cache_off_keeps_nothing() -> None:
    cache = TokenCache(ttl=0.0)
    cache.put("h1", INFO)
    assert cache.get("h1") is None


def test_token_cache_is_bounded() -> None:
    cache = TokenCache(size=2)
    for name in ("a", "b", "c"):
        cache.put(name, INFO)
    assert [cache.get(n) for n in ("a", "b", "c")] == [None, None, INFO]


def test_failure_limiter_window() -> None:
    limiter = FailureLimiter(per_minute=2)
    limiter.fail("10.0.0.1", now=100.0)
    assert limiter.retry_after("10.0.0.1", now=100.0) is None
    limiter.fail("10.0.0.1", now=110.0)
    assert limiter.retry_after("10.0.0.1", now=110.0) == 51
    assert limiter.retry_after("10.0.0.2", now=110.0) is None
    assert limiter.retry_after("10.0.0.1", now=160.5) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("inline", None),
        ('attachment; filename="a.csv"', "a.csv"),
        ("attachment; filename*=UTF-8''%E2%82%AC.txt", "€.txt"),
        ('attachment; filename="bad\x07name.txt"', "badname.txt"),
        ('attachment; filename="' + "x" * 400 + '"', "x" * 255),
    ],
)
def test_disposition_filename(value: str | None, expected: str | None) -> None:
    assert disposition_filename(value) == expected
