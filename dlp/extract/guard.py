"""A time limit for pure-Python parsers that cannot check a deadline themselves (pypdf and
the email parser): one watchdog thread per process raises `GuardTimeout`
asynchronously in a guarded thread whose time is up. Only wrap code that does not yield
to the consumer, so the exception can only land inside the guarded call.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GuardTimeout", "time_guard"]

_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc


class GuardTimeout(Exception):
    """The guarded call ran past its time."""


class _Watchdog:
    """Deadlines of the guarded calls, and the one thread that enforces them. Arming wakes
    the thread only for a deadline earlier than the one it sleeps towards: waking it on
    every call would hand it the GIL and cost milliseconds per guarded call."""

    def __init__(self) -> None:
        self.wake = threading.Condition()
        self.armed: dict[int, tuple[float, int]] = {}
        self.fired: set[int] = set()
        self.tokens = itertools.count(1)
        self.thread: threading.Thread | None = None
        self.next_wake = float("inf")

    def arm(self, seconds: float) -> int:
        with self.wake:
            token = next(self.tokens)
            deadline = time.monotonic() + seconds
            self.armed[token] = (deadline, threading.get_ident())
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="dlp-extract-watchdog", daemon=True)
                self.thread.start()
            if deadline < self.next_wake:
                self.next_wake = deadline
                self.wake.notify()
            return token

    def disarm(self, token: int) -> bool:
        """Forget the deadline; True (and any pending exception cleared) if it fired."""
        with self.wake:
            _, thread = self.armed.pop(token, (0.0, 0))
            if token in self.fired:
                self.fired.discard(token)
                _SET_ASYNC_EXC(ctypes.c_ulong(thread), None)
                return True
            return False

    def _run(self) -> None:
        while True:
            with self.wake:
                now = time.monotonic()
                for token, (deadline, thread) in self.armed.items():
                    if deadline <= now and token not in self.fired:
                        self.fired.add(token)
                        _SET_ASYNC_EXC(ctypes.c_ulong(thread), ctypes.py_object(GuardTimeout))
                pending = [d for t, (d, _) in self.armed.items() if t not in self.fired]
                self.next_wake = min(pending) if pending else float("inf")
                self.wake.wait(timeout=max(0.0, self.next_wake - now) if pending else None)


_WATCHDOG = _Watchdog()


@contextmanager
def time_guard(seconds: float) -> Iterator[None]:
    """Run the body with at most `seconds` of wall time; raises `GuardTimeout` after."""
    if seconds <= 0:
        raise GuardTimeout
    token = _WATCHDOG.arm(seconds)
    fired = False
    try:
        yield
    finally:
        fired = _WATCHDOG.disarm(token)
    if fired:
        raise GuardTimeout
