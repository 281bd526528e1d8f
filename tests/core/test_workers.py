"""The scan pool: real worker processes, several requests in flight per process, small
items in batches, use from more than one event loop, a killed worker answered with
`ScanTimeout` and replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlp.config import Settings
from dlp.errors import ScanTimeout
from dlp.model import Item, ScanContext, ScanResult
from dlp.pipeline import Scanner
from dlp.workers import (
    BATCH_ITEMS,
    SLOTS,
    SMALL_ITEM_BYTES,
    WORKER_NICENESS,
    ScanPool,
    _Request,
    _scan_one,
    _Worker,
)

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


def test_more_scans_than_a_batch_each_get_their_own_result(pool: ScanPool) -> None:
    count = 3 * BATCH_ITEMS + 5
    texts = [f"Card: {CARDS[n % 3]} (#{n})" if n % 2 else f"Lunch at {n}?" for n in range(count)]

    async def scan_all() -> list[tuple[str | None, int]]:
        results = await asyncio.gather(
            *(pool.scan(Item.from_text(text, name=f"{n}.txt"), CONTEXT) for n, text in enumerate(texts))
        )
        return [(r.item_name, len(r.findings)) for r in results]

    assert asyncio.run(scan_all()) == [(f"{n}.txt", n % 2) for n in range(count)]


def test_scans_queued_while_the_worker_is_busy_share_a_round_trip(
    pool: ScanPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    real_call = _Worker.call

    async def counted(self: _Worker, requests: list[_Request]) -> list[tuple[bool, object]]:
        batches.append(len(requests))
        return await real_call(self, requests)

    monkeypatch.setattr(_Worker, "call", counted)

    async def scan_all() -> list[int]:
        items = [Item.from_text(f"Card: {CARDS[n % 3]} (#{n})") for n in range(40)]
        return [len(r.findings) for r in await asyncio.gather(*(pool.scan(i, CONTEXT) for i in items))]

    assert asyncio.run(scan_all()) == [1] * 40
    assert sum(batches) == 40
    assert max(batches) == BATCH_ITEMS
    assert len(batches) <= 40 // 2


SLOW_TEXT = "Order 4417 1234 5678 9112 on 2024-01-02, ref 12345678, tel 555-0100. " * 3_600
"""Just under `SMALL_ITEM_BYTES`; one scan takes tens of milliseconds."""


def test_a_caller_that_gives_up_leaves_its_batch_and_worker_alone(pool: ScanPool) -> None:
    slow = Item.from_text(SLOW_TEXT)
    assert slow.size < SMALL_ITEM_BYTES

    async def scenario() -> tuple[str, list[int]]:
        impatient = asyncio.create_task(pool.scan(slow, CONTEXT, timeout=0.003))
        await asyncio.sleep(0)
        results = await asyncio.gather(*(pool.scan(Item.from_text(f"Card: {c}"), CONTEXT) for c in CARDS))
        with pytest.raises(ScanTimeout) as failed:
            await impatient
        return str(failed.value), [len(r.findings) for r in results]

    pids = {w.process.process.pid for w in pool._idle}
    assert asyncio.run(scenario()) == ("scan did not finish within 0 s", [1, 1, 1])
    assert {w.process.process.pid for w in pool._idle} == pids


def test_close_does_not_wait_for_a_batch_nobody_waits_for(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    pool = ScanPool(settings, workers=1)

    async def scenario() -> float:
        with pytest.raises(ScanTimeout):
            await pool.scan(Item.from_text(SLOW_TEXT), CONTEXT, timeout=0.001)
        started = time.monotonic()
        pool.close()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < settings.limits.max_seconds


def test_an_item_whose_caller_gave_up_is_not_scanned(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(Settings(state_dir=tmp_path))
    item = Item.from_text(f"Card: {CARDS[0]}")
    late_ok, late = _scan_one(scanner, item, CONTEXT, None, time.monotonic() - 1)
    ok, result = _scan_one(scanner, item, CONTEXT, None, time.monotonic() + 60)
    assert (late_ok, type(late), str(late)) == (False, ScanTimeout, "the scan waited past its deadline")
    assert ok
    assert isinstance(result, ScanResult)
    assert len(result.findings) == 1


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


def _cpu_ticks(pid: int) -> int:
    """User plus system clock ticks a process has used (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[ScanPool]:
    scan_pool = ScanPool(Settings(state_dir=tmp_path), workers=2)
    scan_pool.warm_up()
    yield scan_pool
    scan_pool.close()


SMALL_TEXT = "Quarterly numbers attached; call me on Tuesday about the offsite. " * 150


def test_small_items_keep_one_process_free(two_processes: ScanPool) -> None:
    pids = sorted({w.process.process.pid for w in two_processes._idle})
    assert len(pids) == 2
    before = [_cpu_ticks(pid) for pid in pids]

    async def scan_many() -> list[int]:
        items = [Item.from_text(f"{n} {SMALL_TEXT}") for n in range(300)]
        gate = asyncio.Semaphore(8)

        async def one(item: Item) -> int:
            async with gate:
                return len((await two_processes.scan(item, CONTEXT)).findings)

        return await asyncio.gather(*(one(item) for item in items))

    assert asyncio.run(scan_many()) == [0] * 300
    used = sorted(_cpu_ticks(pid) - start for pid, start in zip(pids, before, strict=True))
    assert used[0] == 0
    assert used[1] > 0


def test_a_worker_killed_with_both_channels_busy_stalls_nothing(two_processes: ScanPool) -> None:
    slow = Item.from_text(SLOW_TEXT)

    async def scenario() -> tuple[int, set[str], float]:
        started = time.monotonic()
        scans = [asyncio.create_task(two_processes.scan(slow, CONTEXT, timeout=30)) for _ in range(40)]
        while len({w for w in two_processes._busy if w.small}) < SLOTS:
            await asyncio.sleep(0.005)
        (busy,) = {w.process for w in two_processes._busy}
        assert busy.process.pid is not None
        os.kill(busy.process.pid, signal.SIGKILL)
        outcomes = await asyncio.gather(*scans, return_exceptions=True)
        after = await two_processes.scan(Item.from_text(f"Card: {CARDS[0]}"), CONTEXT, timeout=30)
        failures = {str(o) for o in outcomes if isinstance(o, BaseException)}
        scanned = sum(isinstance(o, ScanResult) for o in outcomes) + len(after.findings)
        return scanned, failures, time.monotonic() - started

    scanned, failures, seconds = asyncio.run(scenario())
    assert failures == {"a scan worker died"}
    assert scanned > 1
    assert seconds < 20


def test_small_items_do_not_wait_behind_a_large_one(two_processes: ScanPool) -> None:
    large = Item.from_text("Order 4417 1234 5678 9112 on 2024-01-02, ref 12345678, tel 555-0100. " * 40_000)
    assert large.size > SMALL_ITEM_BYTES

    async def scenario() -> list[str]:
        finished: list[str] = []

        async def scan(name: str, item: Item) -> None:
            await two_processes.scan(item, CONTEXT)
            finished.append(name)

        big = asyncio.create_task(scan("large", large))
        await asyncio.sleep(0.2)
        await asyncio.gather(*(scan(f"small-{n}", Item.from_text(f"{n} {SMALL_TEXT}")) for n in range(10)))
        await big
        return finished

    assert asyncio.run(scenario())[-1] == "large"
