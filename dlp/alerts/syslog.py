"""Syslog sink: RFC 5424 messages carrying a CEF line, over UDP or TCP.

UDP (RFC 5426): one datagram per alert, at most `MAX_DATAGRAM` octets. TCP (RFC 6587):
octet-counting framing (`LEN SP MSG`), one connection kept open and re-opened after a
failure. Facility comes from `alerts.syslog_facility` (default 16, local0); severity from
the incident's action (`SYSLOG_SEVERITY`). Structured data `[dlp@32473 ...]` repeats the
incident id and action for filtering (32473 is the example enterprise number of RFC 5612).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
from collections.abc import Mapping
from typing import Any, Literal

from dlp.alerts.base import AlertDeliveryError, QueuedSink
from dlp.alerts.cef import cef_message
from dlp.alerts.payload import SYSLOG_SEVERITY

__all__ = ["MAX_DATAGRAM", "SyslogSink", "rfc5424"]

MAX_DATAGRAM = 8192
_APP = "dlp"
_MSGID = "incident"
_SD_ID = "dlp@32473"


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def rfc5424(
    incident: Mapping[str, Any],
    facility: int = 16,
    hostname: str | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """One RFC 5424 message (no framing) whose MSG is the incident's CEF line."""
    action = str(incident.get("action", "alert"))
    pri = facility * 8 + SYSLOG_SEVERITY.get(action, 5)
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    timestamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = _header_field(hostname or socket.gethostname(), 255)
    incident_id = _sd_value(str(incident.get("id", "")))
    structured = f'[{_SD_ID} incident="{incident_id}" action="{_sd_value(action)}"]'
    line = f"<{pri}>1 {timestamp} {host} {_APP} {os.getpid()} {_MSGID} {structured} {cef_message(incident)}"
    return line.encode("utf-8")[:MAX_DATAGRAM].decode("utf-8", "ignore").encode("utf-8")


class SyslogSink(QueuedSink):
    """Send each alert to a syslog server at `host:port` over UDP or TCP."""

    name = "syslog"

    def __init__(
        self,
        host: str,
        port: int,
        protocol: Literal["udp", "tcp"] = "udp",
        facility: int = 16,
        queue_size: int = 1000,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        super().__init__(queue_size=queue_size, retries=retries, backoff=backoff, max_backoff=max_backoff)
        self._address = (host, port)
        self._protocol = protocol
        self._facility = facility
        self._udp: socket.socket | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, payload: Mapping[str, Any]) -> None:
        """One message: a datagram, or an octet-counted frame on the TCP connection."""
        incident = payload.get("incident")
        message = rfc5424(incident if isinstance(incident, Mapping) else {}, self._facility)
        try:
            if self._protocol == "udp":
                await self._send_udp(message)
            else:
                await self._send_tcp(message)
        except OSError as exc:
            await self._drop_connection()
            raise AlertDeliveryError(type(exc).__name__) from exc

    async def _send_udp(self, message: bytes) -> None:
        if self._udp is None:
            infos = await asyncio.get_running_loop().getaddrinfo(*self._address, type=socket.SOCK_DGRAM)
            family, kind, proto, _, address = infos[0]
            self._udp = socket.socket(family, kind, proto)
            self._udp.setblocking(False)
            self._udp.connect(address)
        self._udp.send(message)

    async def _send_tcp(self, message: bytes) -> None:
        if self._writer is None:
            self._writer = (await asyncio.wait_for(asyncio.open_connection(*self._address), 10.0))[1]
        writer = self._writer
        writer.write(str(len(message)).encode("ascii") + b" " + message)
        await asyncio.wait_for(writer.drain(), 10.0)

    async def _drop_connection(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def aclose(self) -> None:
        """Close the socket or connection."""
        await self._drop_connection()
