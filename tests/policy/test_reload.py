"""Reload: a valid change is handed over, an invalid one keeps the running set and is
counted; file changes are polled and SIGHUP forces a reload."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from dlp.policy import PolicySet
from dlp.policy.reload import PolicyReloader

RULE = "rules:\n  - id: r\n    action: {action}\n    when: {{channel: smtp}}\n"


def reloads(result: str) -> float:
    """The current value of dlp_policy_reloads_total{result=...}."""
    return REGISTRY.get_sample_value("dlp_policy_reloads_total", {"result": result}) or 0.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A policy folder with one valid pack."""
    (tmp_path / "p.yaml").write_text(RULE.format(action="alert"))
    return tmp_path


def reloader(folder: Path, received: list[PolicySet], interval: float = 2.0) -> PolicyReloader:
    """A reloader over `folder` that records what it hands over."""
    return PolicyReloader(
        [folder],
        received.append,
        current=PolicySet.load([folder]),
        internal_domains=("corp.example",),
        interval=interval,
    )


def test_valid_change_is_handed_over_and_counted(folder: Path) -> None:
    received: list[PolicySet] = []
    watcher = reloader(folder, received)
    before = reloads("success")
    assert watcher.poll() is None
    (folder / "p.yaml").write_text(RULE.format(action="block"))
    new = watcher.poll()
    assert new is not None and received == [new]
    assert [r.action.label for r in new.rules] == ["block"] and new.internal_domains == ("corp.example",)
    assert reloads("success") == before + 1
    assert watcher.poll() is None


def test_invalid_change_keeps_the_running_set(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    received: list[PolicySet] = []
    watcher = reloader(folder, received)
    running = watcher.version
    before = reloads("failure")
    (folder / "p.yaml").write_text(RULE.format(action="explode"))
    with caplog.at_level(logging.ERROR, logger="dlp.policy"):
        assert watcher.poll() is None
    assert received == [] and watcher.version == running
    assert reloads("failure") == before + 1
    assert f"keeping version {running}" in caplog.text and "rules[0].action" in caplog.text
    assert watcher.poll() is None, "the same broken files are reported once"


def test_unchanged_content_is_not_handed_over_unless_forced(folder: Path) -> None:
    received: list[PolicySet] = []
    watcher = reloader(folder, received)
    stat = (folder / "p.yaml").stat()
    os.utime(folder / "p.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert watcher.poll() is None and received == []
    forced = watcher.reload(force=True)
    assert forced is not None and received == [forced]


async def test_run_polls_and_sighup_forces(folder: Path) -> None:
    received: list[PolicySet] = []
    threads: set[int] = set()

    def swap(policies: PolicySet) -> None:
        threads.add(threading.get_ident())
        received.append(policies)

    watcher = PolicyReloader([folder], swap, current=PolicySet.load([folder]), interval=0.05)
    watcher.install_signal_handler(asyncio.get_running_loop())
    task = asyncio.create_task(watcher.run())
    try:
        (folder / "q.yaml").write_text(RULE.format(action="block").replace("id: r", "id: q"))
        await _until(lambda: len(received) == 1)
        assert sorted(r.id for r in received[0].rules) == ["q", "r"]
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(lambda: len(received) == 2)
        assert received[1].version == received[0].version
        assert threads == {threading.get_ident()}, "the callback runs on the event loop"
    finally:
        watcher.stop()
        await asyncio.wait_for(task, timeout=2)


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)
