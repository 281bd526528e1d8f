"""Recently verified API tokens, kept for a few seconds so a busy client does not cost a
store lookup (and a thread hop) on every request.

Keyed by the token's SHA-256 (the secret itself is not kept). Only successful checks
are cached; revoking through the API clears the cache at once, a revocation made
elsewhere (another replica) takes effect within `ttl` seconds.
"""

from __future__ import annotations

import time

from dlp.store import TokenInfo

__all__ = ["TokenCache"]


class TokenCache:
    """Token hash -> (TokenInfo, expiry), bounded in size."""

    def __init__(self, ttl: float = 10.0, size: int = 1024) -> None:
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
        """Remember a successful verification for `ttl` seconds."""
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (info, time.monotonic() + self.ttl)

    def clear(self) -> None:
        """Forget everything (after a revocation)."""
        self._entries.clear()
