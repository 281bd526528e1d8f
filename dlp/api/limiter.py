"""Failed authentications per client address over a sliding minute (for 429 answers)."""

from __future__ import annotations

import collections
import time

__all__ = ["FailureLimiter"]

_WINDOW_SECONDS = 60.0
_MAX_TRACKED = 10_000


class FailureLimiter:
    """Failed authentications per client address over a sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, collections.deque[float]] = {}

    def _recent(self, address: str, now: float) -> collections.deque[float]:
        failures = self._failures.get(address)
        if failures is None:
            return collections.deque()
        while failures and now - failures[0] > _WINDOW_SECONDS:
            failures.popleft()
        if not failures:
            del self._failures[address]
        return failures

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """Seconds until `address` may try again, or None if it is not limited."""
        now = time.monotonic() if now is None else now
        failures = self._recent(address, now)
        if len(failures) < self.per_minute:
            return None
        return max(1, int(_WINDOW_SECONDS - (now - failures[0])) + 1)

    def fail(self, address: str, now: float | None = None) -> None:
        """Count one failure for `address`."""
        now = time.monotonic() if now is None else now
        if len(self._failures) >= _MAX_TRACKED and address not in self._failures:
            oldest = min(self._failures, key=lambda a: self._failures[a][-1] if self._failures[a] else 0.0)
            del self._failures[oldest]
        self._failures.setdefault(address, collections.deque()).append(now)
