"""The periodic retention job: purge expired quarantine items and incidents, end abandoned
release claims."""

from __future__ import annotations

import asyncio
import logging
import time

from dlp.config import Settings
from dlp.errors import StoreError
from dlp.store.base import PurgeReport, Store

__all__ = ["purge_once", "run_retention"]

log = logging.getLogger(__name__)


async def purge_once(store: Store, now: float | None = None) -> PurgeReport:
    """One purge pass off the event loop, logged when it removed anything."""
    report = await asyncio.to_thread(store.purge_expired, time.time() if now is None else now)
    if report.quarantine_items or report.incidents or report.orphan_files:
        log.info(
            "retention purged %d quarantine items, %d incidents, %d orphan files",
            report.quarantine_items,
            report.incidents,
            report.orphan_files,
        )
    if report.stale_releases:
        log.warning(
            "%d quarantine items went back to held: their release claim outlived its lease "
            "(the replica releasing them stopped; the next hop may have received them)",
            report.stale_releases,
        )
    return report


async def run_retention(store: Store, settings: Settings) -> None:
    """Purge now and then every `retention.purge_interval_seconds`, until cancelled.

    A failed pass is logged and retried at the next interval; it never ends the loop."""
    while True:
        try:
            await purge_once(store)
        except StoreError as exc:
            log.error("retention purge failed: %s", exc)
        await asyncio.sleep(settings.retention.purge_interval_seconds)
