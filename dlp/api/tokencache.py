"""Recently verified API tokens, kept for a few seconds so a busy client does not cost a
store lookup (and a thread hop) on every request.

Keyed by the token's SHA-256 (the secret itself is not kept). Only successful checks
are cached; revoking through the API clears the cache at once. Only the embedded
(single-replica) store uses the cache: with a shared store a revocation made on
another replica must take effect at once, so the cache is off (ttl 0).
"""

from __future__ import annotations

import time

from dlp.store import TokenInfo

__all__ = ["TOKEN_CACHE_SECONDS", "TokenCache"]

TOKEN_CACHE_SECONDS = 10.0


class TokenCache:
    """Token hash -> (TokenInfo, expiry), bounded in size."""

    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[TokenInfo, float]] = {}

    def get(self, digest: str) -> TokenInfo | None:
        """The cached token for this hash, if still fresh."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self._entries[digest]
            return None
        return entry[0]

    def put(self, digest: str, info: TokenInfo) -> None:
        """Remember a successful verification for `ttl` seconds (nothing when ttl is 0)."""
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (info, time.monotonic() + self.ttl)

    def clear(self) -> None:
        """Forget everything (after a revocation)."""
        self._entries.clear()
