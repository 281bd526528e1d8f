"""Scanning off the event loop: a pool of worker processes, each with its own Scanner.

Channels (SMTP relay, HTTP API) are asyncio programs; scanning is CPU-bound. Each worker
builds its `Scanner` once from the settings and scans items handed to it; results come
back as frozen dataclasses. A deadline bounds every scan: past it the caller gets
`ScanTimeout` and the stuck worker pool is replaced, so one hostile item cannot hold a
worker for ever. Policy reload replaces the pool: scans in progress finish with the
policy set they started with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from dlp.config import Settings
from dlp.errors import ScanTimeout
from dlp.model import Item, ScanContext, ScanResult
from dlp.pipeline import Scanner
from dlp.policy import PolicySet

__all__ = ["ScanPool"]

_scanner: Scanner | None = None


def _init_worker(settings: Settings, policy_folders: Sequence[Path] | None) -> None:
    global _scanner
    # Ctrl-C reaches the whole process group: the parent decides when workers stop
    # (after in-flight scans), so a worker must not die of SIGINT mid-scan.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    policies = None
    if policy_folders is not None:
        policies = PolicySet.load(policy_folders, internal_domains=settings.internal_domains)
    _scanner = Scanner.from_settings(settings, policies=policies)


def _scan_in_worker(item: Item, context: ScanContext) -> ScanResult:
    assert _scanner is not None, "worker not initialised"
    return _scanner.scan(item, context)


class ScanPool:
    """Worker processes that scan items; `await pool.scan(item, context)` from async code."""

    def __init__(
        self, settings: Settings, workers: int | None = None, policy_folders: Sequence[Path] | None = None
    ) -> None:
        self._settings = settings
        self._workers = workers or settings.worker_count
        self._policy_folders = list(policy_folders) if policy_folders is not None else None
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._settings, self._policy_folders),
        )

    async def scan(self, item: Item, context: ScanContext, timeout: float | None = None) -> ScanResult:
        """Scan in a worker; raise `ScanTimeout` past `timeout` seconds (default: the
        extraction time limit plus a margin for decoding and detection)."""
        limit = timeout if timeout is not None else self._settings.limits.max_seconds + 5.0
        with self._lock:
            executor = self._executor
        future = asyncio.get_running_loop().run_in_executor(executor, _scan_in_worker, item, context)
        try:
            return await asyncio.wait_for(future, limit)
        except TimeoutError as exc:
            self._replace(executor)
            raise ScanTimeout(f"scan did not finish within {limit:.0f} s") from exc
        except concurrent.futures.process.BrokenProcessPool as exc:
            self._replace(executor)
            raise ScanTimeout("a scan worker died") from exc

    def reload(self, policy_folders: Sequence[Path]) -> None:
        """Use a new (already validated) set of policy folders for scans started from now on."""
        with self._lock:
            self._policy_folders = list(policy_folders)
            old, self._executor = self._executor, self._new_executor()
        old.shutdown(wait=False)

    def _replace(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = self._new_executor()
        for process in list(getattr(broken, "_processes", {}).values()):
            process.kill()
        broken.shutdown(wait=False, cancel_futures=True)

    def warm_up(self) -> None:
        """Start every worker now (building engines) instead of on the first scan."""
        futures = [self._executor.submit(_noop) for _ in range(self._workers)]
        concurrent.futures.wait(futures)

    def close(self) -> None:
        """Stop the workers after the scans in progress."""
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    return None
