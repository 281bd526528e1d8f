"""A time limit for pure-Python parsers that cannot check a deadline themselves (pypdf,
striprtf, the email parser): a timer raises `GuardTimeout` asynchronously in the calling
thread when the time is up. Only wrap code that does not yield to the consumer, so the
exception can only land inside the guarded call.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["GuardTimeout", "time_guard"]


class GuardTimeout(Exception):
    """The guarded call ran past its time."""


_SET_ASYNC_EXC = ctypes.pythonapi.PyThreadState_SetAsyncExc


@contextmanager
def time_guard(seconds: float) -> Iterator[None]:
    """Run the body with at most `seconds` of wall time; raises `GuardTimeout` after."""
    if seconds <= 0:
        raise GuardTimeout
    thread = threading.get_ident()
    lock = threading.Lock()
    state = {"active": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["active"]:
                state["fired"] = True
                _SET_ASYNC_EXC(ctypes.c_ulong(thread), ctypes.py_object(GuardTimeout))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["active"] = False
            fired = state["fired"]
            if fired:
                _SET_ASYNC_EXC(ctypes.c_ulong(thread), None)
        timer.cancel()
    if fired:
        raise GuardTimeout
