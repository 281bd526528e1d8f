"""Fan incidents out to the configured alert sinks, from any thread.

The store calls its incident callbacks from worker threads; `AlertDispatcher.on_incident`
is such a callback: it builds the safe payload and hands it to the event loop with
`call_soon_threadsafe`, where each sink queues it without waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from dlp.alerts.base import QueuedSink
from dlp.alerts.payload import alert_payload
from dlp.alerts.syslog import SyslogSink
from dlp.alerts.webhook import WebhookSink
from dlp.config import Settings, parse_listen
from dlp.errors import ConfigError

__all__ = ["AlertDispatcher", "sinks_from_settings"]


def sinks_from_settings(settings: Settings) -> list[QueuedSink]:
    """The sinks `alerts.*` configures (none by default).

    A webhook needs a secret: raise `ConfigError` rather than send unsigned alerts.
    """
    alerts = settings.alerts
    sinks: list[QueuedSink] = []
    if alerts.webhook_url:
        if not alerts.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("alerts.webhook_url: must be an http:// or https:// URL")
        if not alerts.webhook_secret:
            raise ConfigError("alerts.webhook_secret: required when alerts.webhook_url is set")
        sinks.append(
            WebhookSink(
                alerts.webhook_url,
                alerts.webhook_secret.encode("utf-8"),
                timeout=alerts.webhook_timeout_seconds,
                queue_size=alerts.webhook_queue_size,
                retries=alerts.webhook_retries,
                backoff=alerts.webhook_backoff_seconds,
            )
        )
    if alerts.syslog_address:
        host, port = parse_listen(alerts.syslog_address)
        sinks.append(
            SyslogSink(
                host,
                port,
                protocol=alerts.syslog_protocol,
                facility=alerts.syslog_facility,
                queue_size=alerts.webhook_queue_size,
                retries=alerts.webhook_retries,
                backoff=alerts.webhook_backoff_seconds,
            )
        )
    return sinks


class AlertDispatcher:
    """Owns the sinks: `start()` on the loop, `on_incident` from anywhere, `stop()` at the end."""

    def __init__(self, sinks: Sequence[QueuedSink]) -> None:
        self._sinks = list(sinks)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sinks(self) -> list[QueuedSink]:
        """The configured sinks."""
        return list(self._sinks)

    def start(self) -> None:
        """Start every sink's sending task on the running loop."""
        self._loop = asyncio.get_running_loop()
        for sink in self._sinks:
            sink.start()

    def on_incident(self, incident: Mapping[str, Any]) -> None:
        """Alert every sink about one incident; safe to call from any thread, never blocks."""
        if not self._sinks or self._loop is None or self._loop.is_closed():
            return
        payload = alert_payload(incident)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._submit(payload)
        else:
            self._loop.call_soon_threadsafe(self._submit, payload)

    def _submit(self, payload: dict[str, Any]) -> None:
        for sink in self._sinks:
            sink.submit(payload)

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush the queues for up to `timeout` seconds, then close every sink."""
        await asyncio.gather(*(sink.stop(timeout) for sink in self._sinks))
