"""The scan pool: real worker processes, several requests in flight per process, use
from more than one event loop, a killed worker answered with `ScanTimeout` and replaced."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlp.config import Settings
from dlp.errors import ScanTimeout
from dlp.model import Item, ScanContext
from dlp.workers import SLOTS, WORKER_NICENESS, ScanPool

CONTEXT = ScanContext(channel="api", sender="alice@corp.example", recipients=("bob@partner.example",))
CARDS = ("4539 1488 0343 6467", "5425 2334 3010 9903", "4916 3385 0608 2832")


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanPool]:
    """One worker process (so every concurrent request shares it)."""
    scan_pool = ScanPool(Settings(state_dir=tmp_path_factory.mktemp("workers")), workers=1)
    scan_pool.warm_up()
    yield scan_pool
    scan_pool.close()


def _items() -> list[tuple[str, Item]]:
    clean = [
        (f"clean-{n}", Item.from_text(f"Lunch at {n} o'clock?", name=f"clean-{n}.txt")) for n in range(3)
    ]
    cards = [(f"card-{n}", Item.from_text(f"Card: {c}", name=f"card-{n}.txt")) for n, c in enumerate(CARDS)]
    return [pair for both in zip(clean, cards, strict=True) for pair in both]


async def _scan_all(pool: ScanPool) -> dict[str, tuple[str | None, int]]:
    items = _items()
    results = await asyncio.gather(*(pool.scan(item, CONTEXT) for _, item in items))
    return {name: (r.item_name, len(r.findings)) for (name, _), r in zip(items, results, strict=True)}


EXPECTED = {
    **{f"clean-{n}": (f"clean-{n}.txt", 0) for n in range(3)},
    **{f"card-{n}": (f"card-{n}.txt", 1) for n in range(3)},
}


def test_concurrent_scans_each_get_their_own_result(pool: ScanPool) -> None:
    assert SLOTS == 2
    assert asyncio.run(_scan_all(pool)) == EXPECTED


def test_one_pool_serves_several_event_loops(pool: ScanPool) -> None:
    assert [asyncio.run(_scan_all(pool)) for _ in range(2)] == [EXPECTED, EXPECTED]


def test_workers_run_below_the_event_loop_priority(pool: ScanPool) -> None:
    asyncio.run(pool.scan(Item.from_text("hello"), CONTEXT))
    pids = {w.process.process.pid for w in pool._idle}
    parent = os.getpriority(os.PRIO_PROCESS, 0)
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {min(parent + WORKER_NICENESS, 19)}


def test_killed_worker_is_a_scan_timeout_and_is_replaced(pool: ScanPool) -> None:
    async def scenario() -> tuple[str, int]:
        pids = {w.process.process.pid for w in pool._idle}
        assert len(pids) == 1
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ScanTimeout) as failed:
            await pool.scan(Item.from_text("hello"), CONTEXT)
        result = await pool.scan(Item.from_text(f"Card: {CARDS[0]}"), CONTEXT)
        return str(failed.value), len(result.findings)

    message, findings = asyncio.run(scenario())
    assert message == "a scan worker died"
    assert findings == 1
    assert len({w.process.process.pid for w in pool._idle}) == 1


def test_timeout_is_scan_timeout(tmp_path: Path) -> None:
    pool = ScanPool(Settings(state_dir=tmp_path), workers=1)
    try:
        with pytest.raises(ScanTimeout) as failed:
            asyncio.run(pool.scan(Item.from_text("hello"), CONTEXT, timeout=0.001))
        assert str(failed.value) == "scan did not finish within 0 s"
    finally:
        pool.close()
