"""The SMTP relay: receive a message, scan it, then deliver, reject or quarantine it.

Before-queue semantics: the reply to the final "." is given only once the outcome is
final. Allow and alert: 250 only after the next hop accepted. Quarantine: 250 only after
the store returned (content fsynced, row committed). Block: 550 5.7.1 with the policy's
message and the incident id. Everything else is a 4xx, so the MTA in front keeps the
message and retries: next hop down, refusing or slow (451 4.4.1); scan timeout or any
internal error (451 4.3.0). A per-message deadline (`smtp.message_timeout_seconds`)
covers scanning plus forwarding; a quarantine write that has started is allowed to
finish (cancelling it could store a message and still answer 4xx, so the retry would be
stored twice).

The message is decided once for all its recipients: the policy sees every recipient
(and which are external) and its verdict, the most severe that applies, holds for the
whole message. Splitting a message per recipient would need one next-hop transaction per
verdict and could not be answered with a single reply to ".".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from typing import TYPE_CHECKING

from aiosmtpd.smtp import Envelope, Session

from dlp import metrics
from dlp.config import Settings, parse_listen
from dlp.errors import (
    ConfigError,
    PermanentDeliveryError,
    ScanTimeout,
    SmtpUtf8Unsupported,
    TemporaryDeliveryError,
)
from dlp.model import Action, Item, ScanContext, ScanResult
from dlp.smtp import replies
from dlp.smtp.headers import rewrite_headers
from dlp.smtp.nexthop import NextHop, close_idle_connections, deliver, next_hop_from_settings
from dlp.smtp.server import XFORWARD_ATTRIBUTES, RelayEnvelope, RelaySMTP
from dlp.store import Store, incident_warranted

if TYPE_CHECKING:
    from dlp.workers import ScanPool

__all__ = ["Relay"]

log = logging.getLogger(__name__)

_UNAVAILABLE = ("[UNAVAILABLE]", "[TEMPUNAVAIL]")
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NET = ipaddress.IPv4Network | ipaddress.IPv6Network


class Relay:
    """The relay service: `await start()`, `port`, `await stop(grace)`."""

    def __init__(self, settings: Settings, pool: ScanPool | None, store: Store) -> None:
        if pool is None and settings.smtp.scan:
            raise ConfigError("the relay scans (smtp.scan) but was given no scan pool")
        self._settings = settings
        self._smtp = settings.smtp
        self._pool = pool
        self._store = store
        self._hop: NextHop = next_hop_from_settings(settings)
        try:
            self._networks: tuple[_NET, ...] = tuple(
                ipaddress.ip_network(n, strict=False) for n in settings.smtp.client_networks
            )
        except ValueError as exc:
            raise ConfigError(f"smtp.client_networks: {exc}") from exc
        self._tls = _tls_context(settings)
        self._server: asyncio.Server | None = None
        self._connections: set[RelaySMTP] = set()
        self._closing = False
        self._hostname = settings.smtp.hostname or ""

    @property
    def port(self) -> int:
        """The port actually bound (the OS chooses when `smtp.listen` ends in `:0`)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the relay is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        """Client connections currently open."""
        return len(self._connections)

    async def start(self) -> None:
        """Listen on `smtp.listen`."""
        loop = asyncio.get_running_loop()
        if not self._hostname:
            self._hostname = await asyncio.to_thread(socket.getfqdn)
        host, port = parse_listen(self._smtp.listen)
        self._server = await loop.create_server(lambda: self._protocol(loop), host, port)
        log.info("SMTP relay listening on %s:%d, next hop %s", host, self.port, self._hop)

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> RelaySMTP:
        return RelaySMTP(
            self,
            admit=self._admit,
            on_close=self._connections.discard,
            closing=lambda: self._closing,
            max_recipients=self._smtp.max_recipients,
            data_size_limit=self._smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._hostname,
            ident="ESMTP",
            tls_context=self._tls,
            loop=loop,
        )

    def _admit(self, server: RelaySMTP) -> str | None:
        if self._closing:
            return replies.SHUTTING_DOWN
        if not self._allowed(server.peer_host()):
            log.warning("refused SMTP client %s: not in smtp.client_networks", server.peer_host())
            return replies.CLIENT_REJECTED
        if len(self._connections) >= self._smtp.max_connections:
            return replies.OVERLOADED
        self._connections.add(server)
        return None

    def _allowed(self, host: str) -> bool:
        try:
            address: _IP = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == net.version and address in net for net in self._networks)

    async def stop(self, grace: float) -> None:
        """Stop accepting connections; messages being processed get `grace` seconds to
        finish; then every remaining client is told 421 and disconnected."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self._connections) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._connections):
            connection.abort(replies.SHUTTING_DOWN)
        if self._server is not None:
            await self._server.wait_closed()
        await close_idle_connections()
        log.info("SMTP relay stopped")

    # aiosmtpd handler hooks

    async def handle_EHLO(
        self, server: RelaySMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """Announce PIPELINING, DSN and XFORWARD besides aiosmtpd's own extensions, and not
        the AUTH that aiosmtpd announces after STARTTLS (the relay has no logins).

        PIPELINING (RFC 2920): aiosmtpd answers commands in order from one buffered stream,
        and DATA ends a group (the client waits for 354), so a client may send MAIL, RCPT
        and DATA in one packet; Postfix's smtp client then needs one round trip less per
        recipient. Commands sent ahead of STARTTLS's handshake are discarded by aiosmtpd."""
        session.host_name = hostname
        extra = [
            "250-PIPELINING",
            "250-DSN",
            "250-ENHANCEDSTATUSCODES",
            "250-XFORWARD " + " ".join(XFORWARD_ATTRIBUTES),
        ]
        own = [line for line in responses[:-1] if not line.startswith("250-AUTH")]
        return [*own, *extra, responses[-1]]

    async def handle_exception(self, error: Exception) -> str:
        """Never a permanent 500 for our own failure: the MTA keeps the mail and retries."""
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        return replies.INTERNAL_ERROR

    async def handle_DATA(self, server: RelaySMTP, session: Session, envelope: Envelope) -> str:
        """Decide the message and answer the final "."."""
        assert isinstance(envelope, RelayEnvelope)
        server.busy = True
        try:
            reply = await self._process(server, envelope)
        except Exception as exc:
            log.error("message processing failed: %s", type(exc).__name__, exc_info=exc)
            reply = replies.INTERNAL_ERROR
        finally:
            server.busy = False
        metrics.SMTP_REPLIES.labels(replies.reply_class(reply)).inc()
        return reply

    async def _process(self, server: RelaySMTP, envelope: RelayEnvelope) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._smtp.message_timeout_seconds
        content = envelope.original_content or b""
        sender = envelope.mail_from or ""
        recipients = tuple(envelope.rcpt_tos)
        client = _client_address(envelope, server)
        if not self._smtp.scan:
            return await self._forward(envelope, rewrite_headers(content), deadline, "pass-through")
        context = ScanContext(
            channel="smtp",
            sender=sender,
            recipients=recipients,
            client=client,
            internal_domains=self._settings.internal_domains,
        )
        item = Item(data=content, name=None, declared_type="message/rfc822")
        assert self._pool is not None
        remaining = max(deadline - loop.time(), 0.001)
        try:
            result = await self._pool.scan(
                item, context, timeout=remaining, max_seconds=self._scan_seconds(remaining)
            )
        except ScanTimeout as exc:
            metrics.SCAN_ERRORS.labels("smtp").inc()
            log.warning("scan failed for message from client %s: %s", client, exc)
            return replies.SCAN_FAILED
        except Exception as exc:
            metrics.SCAN_ERRORS.labels("smtp").inc()
            log.error("scan failed for message from client %s: %s", client, type(exc).__name__, exc_info=exc)
            return replies.SCAN_FAILED
        metrics.record_scan("smtp", result)
        action = result.action
        log.info(
            "scan %s: %s (%d bytes, %d recipients, client %s)",
            result.id,
            action.label,
            len(content),
            len(recipients),
            client,
        )
        if action is Action.BLOCK:
            blocked_incident = await asyncio.to_thread(self._store.record_incident, result, context)
            return replies.blocked(result.verdict.message, blocked_incident)
        if action is Action.QUARANTINE:
            return await self._quarantine(content, result, context)
        incident: str | None = None
        if incident_warranted(result):
            incident = await asyncio.to_thread(self._store.record_incident, result, context)
        added: list[tuple[str, str]] = []
        if self._smtp.add_headers:
            added.append(("X-DLP-Verdict", action.label))
            if incident is not None:
                added.append(("X-DLP-Incident", incident))
        return await self._forward(envelope, rewrite_headers(content, added), deadline, result.id)

    def _scan_seconds(self, remaining: float) -> float:
        """The scan's share of a message's remaining time: what the next hop may take is
        kept back (half the time at least goes to the scan). A scan that runs out ends
        flagged `limit:time` and the policy decides (the shipped default pack quarantines
        such mail outbound), where a scan cut off by the message deadline would leave only
        451 to answer, on every retry of the same message."""
        kept_back = min(self._smtp.next_hop_timeout_seconds, remaining / 2)
        return min(self._settings.limits.max_seconds, remaining - kept_back)

    async def _quarantine(self, content: bytes, result: ScanResult, context: ScanContext) -> str:
        quarantine_id = await asyncio.to_thread(self._store.quarantine, content, result, context)
        try:
            await asyncio.to_thread(self._store.record_incident, result, context, quarantine_id)
        except Exception as exc:
            log.error(
                "quarantined %s but recording its incident failed: %s",
                quarantine_id,
                type(exc).__name__,
                exc_info=exc,
            )
        return replies.QUARANTINED

    async def _forward(self, envelope: RelayEnvelope, data: bytes, deadline: float, label: str) -> str:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            metrics.NEXT_HOP_FAILURES.labels("temporary").inc()
            return replies.NEXT_HOP_UNAVAILABLE
        try:
            await deliver(
                self._hop,
                envelope.mail_from or "",
                envelope.rcpt_tos,
                data,
                timeout=min(remaining, self._smtp.next_hop_timeout_seconds),
                mail_options=_mail_options(envelope),
                rcpt_options_each=envelope.rcpt_params,
                xforward=envelope.xforward,
            )
        except TemporaryDeliveryError as exc:
            metrics.NEXT_HOP_FAILURES.labels("temporary").inc()
            log.warning("%s: next hop failed temporarily: %s", label, exc)
            return replies.NEXT_HOP_UNAVAILABLE
        except PermanentDeliveryError as exc:
            metrics.NEXT_HOP_FAILURES.labels("permanent").inc()
            log.warning("%s: next hop rejected: %s", label, exc)
            if isinstance(exc, SmtpUtf8Unsupported):
                return replies.SMTPUTF8_UNSUPPORTED
            return replies.NEXT_HOP_REJECTED
        return replies.DELIVERED


def _mail_options(envelope: RelayEnvelope) -> list[str]:
    """aiosmtpd's parsed MAIL options (SIZE, BODY, SMTPUTF8) plus the verbatim extras."""
    return [*envelope.mail_options, *envelope.passthrough_mail]


def _client_address(envelope: RelayEnvelope, server: RelaySMTP) -> str:
    forwarded = envelope.xforward.get("ADDR")
    if forwarded and forwarded not in _UNAVAILABLE:
        return forwarded.removeprefix("IPV6:")
    return server.peer_host()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.smtp.tls_cert, settings.smtp.tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
