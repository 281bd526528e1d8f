"""What an alert says about an incident: a safe copy of it, and how severe it is.

Incidents from the store already hold only masked previews and keyed hashes. The alert
copy is built defensively all the same: findings keep only the fields named in
`FINDING_FIELDS`, and top-level keys that could carry content (`DROPPED_KEYS`) are
removed, so a field added to incidents later cannot leak a raw value to a SIEM.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Mapping
from typing import Any

from dlp import __version__
from dlp.model import new_id

__all__ = [
    "CEF_SEVERITY",
    "DROPPED_KEYS",
    "FINDING_FIELDS",
    "SYSLOG_SEVERITY",
    "alert_payload",
    "safe_incident",
]

FINDING_FIELDS = (
    "detector",
    "category",
    "location",
    "start",
    "end",
    "confidence",
    "preview",
    "hash",
    "count",
    "explanation",
)
DROPPED_KEYS = frozenset({"content", "data", "body", "text", "raw", "value", "values", "message_bytes"})

CEF_SEVERITY = {"block": 8, "quarantine": 7, "alert": 5, "allow": 3}
"""CEF severity (0-10) by incident action."""

SYSLOG_SEVERITY = {"block": 4, "quarantine": 4, "alert": 5, "allow": 6}
"""RFC 5424 severity by incident action: warning, warning, notice, informational."""


def safe_incident(incident: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-ready copy of `incident` without any field that could hold raw content."""
    out: dict[str, Any] = {}
    for key, value in incident.items():
        if key in DROPPED_KEYS:
            continue
        if key == "findings" and isinstance(value, list | tuple):
            out[key] = [_safe_finding(f) for f in value if isinstance(f, Mapping)]
        else:
            out[key] = _plain(value)
    return out


def _safe_finding(finding: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _plain(finding[key]) for key in FINDING_FIELDS if key in finding}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k not in DROPPED_KEYS}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def alert_payload(incident: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """The webhook body (and the source of the syslog message) for one incident."""
    sent = now or dt.datetime.now(dt.UTC)
    return {
        "event": "incident",
        "delivery": new_id(),
        "sent_at": sent.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": {"product": "dlp", "version": __version__, "host": socket.gethostname()},
        "incident": safe_incident(incident),
    }
