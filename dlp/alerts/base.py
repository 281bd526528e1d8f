"""A sink with a bounded queue: incidents wait here, one task sends them with retries.

Producers never wait: `submit` drops the alert (and counts it in
`dlp_alerts_dropped_total`) when the queue is full, so a dead SIEM cannot stall the
relay. The sending task retries failures the sink marks as retryable, with exponential
backoff (doubling, capped at `max_backoff`, each delay jittered down to half); an alert given up is counted in
`dlp_alert_failures_total` and logged by incident id only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from typing import Any

from dlp.metrics import ALERT_FAILURES, ALERTS_DROPPED, ALERTS_SENT

__all__ = ["AlertDeliveryError", "QueuedSink"]

log = logging.getLogger("dlp.alerts")


class AlertDeliveryError(Exception):
    """One delivery attempt failed; `retryable` says whether trying again may help."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class QueuedSink(abc.ABC):
    """Base of the alert sinks: subclasses implement `send(payload)` for one attempt."""

    name = "sink"

    def __init__(
        self, queue_size: int = 1000, retries: int = 5, backoff: float = 1.0, max_backoff: float = 60.0
    ) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max(1, queue_size))
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def send(self, payload: Mapping[str, Any]) -> None:
        """Deliver one alert once; raise `AlertDeliveryError` on failure."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections; called once the queue is done."""

    def submit(self, payload: dict[str, Any]) -> bool:
        """Queue one alert without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            ALERTS_DROPPED.labels(self.name).inc()
            log.warning("alert dropped", extra={"sink": self.name, "incident_id": _incident_id(payload)})
            return False
        return True

    @property
    def pending(self) -> int:
        """Alerts waiting in the queue."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the sending task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"alerts-{self.name}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued for up to `timeout` seconds, then stop and close."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.aclose()

    async def _run(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                await self._deliver(payload)
            finally:
                self._queue.task_done()

    async def _deliver(self, payload: dict[str, Any]) -> None:
        attempt = 0
        while True:
            try:
                await self.send(payload)
            except AlertDeliveryError as exc:
                if not exc.retryable or attempt >= self._retries:
                    ALERT_FAILURES.labels(self.name).inc()
                    log.warning(
                        "alert failed",
                        extra={
                            "sink": self.name,
                            "incident_id": _incident_id(payload),
                            "attempts": attempt + 1,
                            "reason": exc.reason,
                        },
                    )
                    return
                delay = min(self._max_backoff, self._backoff * 2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                await asyncio.sleep(delay)
            else:
                ALERTS_SENT.labels(self.name).inc()
                return


def _incident_id(payload: Mapping[str, Any]) -> str:
    incident = payload.get("incident")
    if isinstance(incident, Mapping):
        return str(incident.get("id", ""))
    return ""
