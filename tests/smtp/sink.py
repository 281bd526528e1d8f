"""A next hop for tests: an aiosmtpd server on 127.0.0.1 (OS-chosen port) that records
what it accepts and can be told to refuse or hang at chosen commands."""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["Received", "Sink", "start_sink"]


@dataclass(frozen=True)
class Received:
    """One message the sink accepted."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    tls: bool = False


@dataclass
class Sink:
    """Recorded messages plus fault switches (replies or delays per command)."""

    received: list[Received] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    data_delay: float = 0.0
    server: asyncio.Server | None = None
    port: int = 0
    raw_mail_lines: list[str] = field(default_factory=list)
    raw_rcpt_lines: list[str] = field(default_factory=list)
    connections: list[SMTP] = field(default_factory=list)
    xforward: list[str] = field(default_factory=list)

    def drop_connections(self) -> None:
        """Close every client connection (as a next hop's idle timeout would)."""
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        if self.data_reply is not None:
            return self.data_reply
        assert envelope.mail_from is not None and envelope.original_content is not None
        self.received.append(
            Received(
                envelope.mail_from,
                tuple(envelope.rcpt_tos),
                bytes(envelope.original_content),
                tuple(self.raw_mail_lines),
                tuple(self.raw_rcpt_lines),
                session.ssl is not None,
            )
        )
        return "250 2.0.0 Ok: queued"

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class _RecordingSMTP(SMTP):
    """Keeps the MAIL and RCPT parameters verbatim, accepts DSN parameters, records XFORWARD."""

    def __init__(self, sink: Sink, **kwargs: Any) -> None:
        super().__init__(sink, **kwargs)
        self.command_size_limits = collections.defaultdict(lambda: 2048)
        self._sink = sink
        sink.connections.append(self)

    async def push(self, status: Any) -> None:
        if status == "250 HELP":
            await super().push("250-DSN")
            await super().push("250-XFORWARD NAME ADDR PROTO HELO")
        await super().push(status)

    async def smtp_XFORWARD(self, arg: str | None) -> None:
        self._sink.xforward.append(arg or "")
        await self.push("250 2.0.0 Ok")

    async def smtp_MAIL(self, arg: str | None) -> None:
        self._sink.raw_mail_lines.clear()
        self._sink.raw_rcpt_lines.clear()
        self._sink.raw_mail_lines.append(arg or "")
        await super().smtp_MAIL(_without(arg, ("RET", "ENVID")))

    async def smtp_RCPT(self, arg: str | None) -> None:
        self._sink.raw_rcpt_lines.append(arg or "")
        await super().smtp_RCPT(_without(arg, ("NOTIFY", "ORCPT")))


def _without(arg: str | None, names: tuple[str, ...]) -> str | None:
    if arg is None:
        return None
    return " ".join(w for w in arg.split(" ") if w.partition("=")[0].upper() not in names)


async def start_sink(
    sink: Sink | None = None, *, utf8: bool = True, tls_context: ssl.SSLContext | None = None
) -> Sink:
    """Listen on 127.0.0.1 with an OS-chosen port; returns the sink with `port` set."""
    sink = sink or Sink()
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(
        lambda: _RecordingSMTP(
            sink, enable_SMTPUTF8=utf8, hostname="sink.test", tls_context=tls_context, loop=loop
        ),
        "127.0.0.1",
        0,
    )
    sink.port = sink.server.sockets[0].getsockname()[1]
    return sink
