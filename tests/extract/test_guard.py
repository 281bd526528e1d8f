"""The time guard interrupts pure-Python loops and leaves nothing pending afterwards."""

from __future__ import annotations

import time

import pytest

from dlp.extract.guard import GuardTimeout, time_guard


def test_guard_interrupts_a_runaway_loop() -> None:
    started = time.monotonic()
    with pytest.raises(GuardTimeout), time_guard(0.05):
        while True:
            pass
    assert time.monotonic() - started < 1.0


def test_guard_that_did_not_fire_leaves_nothing_behind() -> None:
    with time_guard(0.05):
        total = sum(range(1000))
    time.sleep(0.1)
    assert total == 499500


def test_no_time_left_raises_at_once() -> None:
    with pytest.raises(GuardTimeout), time_guard(0):
        pass


def test_many_short_guards_never_leak_an_exception() -> None:
    outcomes = []
    for _ in range(300):
        try:
            with time_guard(0.0002):
                sum(range(2000))
            outcomes.append("done")
        except GuardTimeout:
            outcomes.append("fired")
    time.sleep(0.05)
    assert len(outcomes) == 300
