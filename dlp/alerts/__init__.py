"""Incident alerts for SIEMs and chat-ops: a signed JSON webhook and RFC 5424 syslog (CEF).

`AlertDispatcher(sinks_from_settings(settings))` is wired to the store's incident
callback by `dlp serve`. Alerts carry only what incidents carry (masked previews and
keyed hashes), filtered again by `dlp.alerts.payload.safe_incident`.
"""

from __future__ import annotations

from dlp.alerts.base import AlertDeliveryError, QueuedSink
from dlp.alerts.cef import cef_message
from dlp.alerts.dispatch import AlertDispatcher, sinks_from_settings
from dlp.alerts.payload import alert_payload, safe_incident
from dlp.alerts.syslog import SyslogSink, rfc5424
from dlp.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSink, signature

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertDeliveryError",
    "AlertDispatcher",
    "QueuedSink",
    "SyslogSink",
    "WebhookSink",
    "alert_payload",
    "cef_message",
    "rfc5424",
    "safe_incident",
    "signature",
    "sinks_from_settings",
]
