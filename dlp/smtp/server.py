"""aiosmtpd's SMTP protocol, adapted to a relay that sits behind an MTA.

What stock aiosmtpd 1.4.6 does that a relay must not:
- refuses every RCPT parameter and MAIL parameters other than SIZE/BODY/SMTPUTF8 with a
  permanent 555, so DSN (RET, ENVID, NOTIFY, ORCPT) and AUTH= would bounce mail: here they
  are accepted, kept verbatim (aiosmtpd upper-cases parameters; ENVID and ORCPT are
  case-sensitive) and passed to the next hop, NOTIFY/ORCPT per recipient;
- has no XFORWARD: here it is announced and accepted (clients are already restricted to
  the configured client networks, which are therefore trusted);
- answers a line over 1000 octets with a permanent 500 ("Line too long"), which makes the
  MTA bounce a message whose only fault is a long line: here the line limit is the
  message size limit, so such a message is scanned and relayed as received (memory per
  connection stays bounded by the size limit, as it is for the message itself);
- answers the size limit with `552 Error: ...`: here `552 5.3.4`;
- announces `AUTH LOGIN PLAIN` after STARTTLS although no credentials exist (every
  attempt fails with 535, and a client with a password for this host then defers or
  bounces its mail): the relay trusts client networks, not logins, so AUTH is neither
  announced (see `Relay.handle_EHLO`) nor accepted (502 5.5.1);
- reads DATA line by line in Python: here in chunks, with the same end-of-data rule;
- accepts broken paths ("RCPT TO:<>", "RCPT TO:<bob@example" with no ">", "<a@b>junk",
  '<"a>b"@example>'), which the next hop then refuses, so the whole message would be
  tempfailed and retried for days: here they get 501 5.1.7 (MAIL) or 501 5.1.3 (RCPT)
  at once, as from Postfix;
- answers most commands without an RFC 3463 status code ("250 OK", "503 Error: nested
  MAIL command") although ENHANCEDSTATUSCODES is announced, which RFC 2034 forbids: here
  every 2xx, 4xx and 5xx reply but the greeting and the answers to EHLO/HELO has one.
Admission (client networks, connection limit) is decided before the greeting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import Callable
from typing import Any, AnyStr

from aiosmtpd.smtp import MISSING, SMTP, Envelope, syntax

from dlp import metrics
from dlp.smtp import replies

__all__ = ["MAIL_PASSTHROUGH", "RCPT_PASSTHROUGH", "XFORWARD_ATTRIBUTES", "RelayEnvelope", "RelaySMTP"]

MAIL_PASSTHROUGH = frozenset({"RET", "ENVID", "AUTH"})
RCPT_PASSTHROUGH = frozenset({"NOTIFY", "ORCPT"})
XFORWARD_ATTRIBUTES = ("NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE")
_AIOSMTPD_TOO_BIG = ("552 Error: Too much mail data", "552 Error: message size exceeds")
_STATUS_CODE = re.compile(r"[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?: |$)")
_STATUS_DETAIL = {
    "500": "5.5.2",
    "501": "5.5.4",
    "502": "5.5.1",
    "503": "5.5.1",
    "504": "5.5.4",
    "555": "5.5.4",
}


class RelayEnvelope(Envelope):
    """An envelope that also keeps verbatim pass-through parameters and XFORWARD data."""

    def __init__(self) -> None:
        super().__init__()
        self.passthrough_mail: list[str] = []
        self.rcpt_params: list[list[str]] = []
        self.xforward: dict[str, str] = {}


class RelaySMTP(SMTP):
    """One client connection. `admit` returns a reply refusing the connection, or None;
    `on_close` runs when the connection ends; `closing` says the relay is shutting down."""

    def __init__(
        self,
        handler: Any,
        *,
        admit: Callable[[RelaySMTP], str | None],
        on_close: Callable[[RelaySMTP], None],
        closing: Callable[[], bool],
        max_recipients: int,
        **kwargs: Any,
    ) -> None:
        limit = kwargs.get("data_size_limit")
        self.line_length_limit = max(SMTP.line_length_limit, (limit or 0) + 2)
        super().__init__(handler, **kwargs)
        # RFC 3461 lets DSN add 100 octets to MAIL and 500 to RCPT, RFC 4954 AUTH= 500 to
        # MAIL; aiosmtpd allows 512 (and keeps the limits in a dict shared by all sessions).
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit,
            {"MAIL": SMTP.command_size_limit + 600, "RCPT": SMTP.command_size_limit + 500},
        )
        self._admit = admit
        self._on_close = on_close
        self._closing = closing
        self._max_recipients = max_recipients
        self.busy = False

    def _create_envelope(self) -> RelayEnvelope:
        return RelayEnvelope()

    def relay_envelope(self) -> RelayEnvelope:
        """The current envelope with its relay fields."""
        assert isinstance(self.envelope, RelayEnvelope)
        return self.envelope

    def peer_host(self) -> str:
        """The connected client's IP address."""
        assert self.session is not None
        peer = self.session.peer
        return str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def _handle_client(self) -> None:
        refusal = self._admit(self)
        if refusal is not None:
            await self.push(refusal)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        self._on_close(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = replies.TOO_BIG if status.startswith(_AIOSMTPD_TOO_BIG) else self._with_status(status)
        await super().push(status)

    def _with_status(self, reply: str) -> str:
        """`reply` with an RFC 3463 status code after the reply code when it has none
        (ENHANCEDSTATUSCODES is announced); the greeting and the EHLO/HELO answers stay."""
        code = reply[:3]
        if (
            code[:1] not in ("2", "4", "5")
            or _STATUS_CODE.match(reply)
            or reply.startswith("250-")
            or reply in ("250 HELP", f"250 {self.hostname}")
            or reply.startswith(f"220 {self.hostname} ")
        ):
            return reply
        detail = _STATUS_DETAIL.get(code, f"{code[0]}.0.0")
        return f"{code} {detail} {reply[4:]}".rstrip()

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self._closing():
            await self.push(replies.SHUTTING_DOWN)
            return
        assert self.envelope is not None and self.session is not None
        had_sender = bool(self.envelope.mail_from)
        if self.session.host_name and not had_sender and _bad_path(arg, "FROM:", self, null_ok=True):
            await self.push(replies.BAD_SENDER)
            return
        arg, extra = _split_params(arg, "FROM:", MAIL_PASSTHROUGH, self)
        await super().smtp_MAIL(arg)
        if not had_sender and self.envelope.mail_from:
            self.relay_envelope().passthrough_mail = extra

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        assert self.envelope is not None
        before = len(self.envelope.rcpt_tos)
        if self.envelope.mail_from and before >= self._max_recipients:
            await self.push(replies.TOO_MANY_RECIPIENTS)
            return
        if self.envelope.mail_from and _bad_path(arg, "TO:", self, null_ok=False):
            await self.push(replies.BAD_RECIPIENT)
            return
        arg, extra = _split_params(arg, "TO:", RCPT_PASSTHROUGH, self)
        await super().smtp_RCPT(arg)
        if len(self.envelope.rcpt_tos) > before:
            self.relay_envelope().rcpt_params.append(extra)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA with the same rules (only CRLF "." CRLF ends the data, so the
        SMTP-smuggling fix of 1.4.5 holds; dot-stuffing is removed; an oversized message
        is read to its end and then refused) but read in chunks instead of line by line:
        aiosmtpd's per-line loop was a third of the relay's CPU per message."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            raw, too_big = await self._read_data()
        except asyncio.IncompleteReadError:
            return
        if too_big:
            self.envelope = self._create_envelope()
            metrics.SMTP_REPLIES.labels("5xx").inc()
            await self.push(replies.TOO_BIG)
            return
        content = raw[1:] if raw.startswith(b".") else raw
        content = content.replace(b"\r\n.", b"\r\n")
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()
        await self.push("250 OK" if status is MISSING else status)

    async def _read_data(self) -> tuple[bytes, bool]:
        """The raw message up to (without) CRLF "." CRLF, and whether it exceeded the
        size limit (then its bytes are dropped as they arrive)."""
        limit = self.data_size_limit
        chunks: list[bytes] = []
        size = 0
        too_big = False
        before = b"\r\n"  # the DATA command's line end: the data may be just ".\r\n"
        while True:
            try:
                chunk = await self._reader.readuntil(b".\r\n")
                ended = (before + chunk)[-5:-3] == b"\r\n"
            except asyncio.LimitOverrunError as exc:
                chunk = await self._reader.read(exc.consumed)
                ended = False
            size += len(chunk)
            if limit and size > limit + 3:
                too_big = True
                chunks.clear()
            if not too_big:
                chunks.append(chunk)
            if ended:
                return (b"".join(chunks)[:-3] if not too_big else b""), too_big
            before = (before + chunk)[-2:]

    async def smtp_AUTH(self, arg: str | None) -> None:
        """No SMTP AUTH: clients are admitted by network (smtp.client_networks)."""
        await self.push(replies.AUTH_UNSUPPORTED)

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str | None) -> None:
        """Postfix's XFORWARD: the original client's name, address, HELO etc. (trusted
        because only configured client networks get this far)."""
        if await self.check_helo_needed("EHLO"):
            return
        values: dict[str, str] = {}
        for word in (arg or "").split():
            name, eq, value = word.partition("=")
            if not eq or name.upper() not in XFORWARD_ATTRIBUTES:
                await self.push(replies.XFORWARD_SYNTAX)
                return
            values[name.upper()] = value
        if not values:
            await self.push(replies.XFORWARD_SYNTAX)
            return
        self.relay_envelope().xforward.update(values)
        await self.push(replies.XFORWARD_OK)

    def abort(self, reply: str) -> None:
        """Shutdown: tell the client `reply` (if it still listens) and drop it."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write(reply.encode("ascii") + b"\r\n")
        transport.close()


def _bad_path(arg: str | None, keyword: str, server: SMTP, *, null_ok: bool) -> bool:
    """Whether a MAIL/RCPT argument has a path aiosmtpd would accept but that cannot be
    relayed: "<" without its ">", text glued after ">", a ">" inside a quoted local part
    (no SMTP command can carry it on), or an empty "<>" where the null path is not
    allowed (RCPT). Paths without brackets are left to aiosmtpd."""
    stripped = server._strip_command_keyword(keyword, arg) if arg is not None else None
    path = (stripped or "").lstrip()
    if not path.startswith("<"):
        return False
    end = path.find(">")
    if end < 0:
        return True
    address, rest = path[1:end], path[end + 1 :]
    glued = bool(rest) and not rest[0].isspace()
    return glued or address.count('"') % 2 == 1 or (not null_ok and not address.strip())


def _split_params(
    arg: str | None, keyword: str, names: frozenset[str], server: SMTP
) -> tuple[str | None, list[str]]:
    """Take the pass-through parameters (verbatim) out of a MAIL/RCPT argument."""
    if arg is None or server.session is None or not server.session.extended_smtp:
        return arg, []
    upper = arg.upper()
    if not any(f"{name}=" in upper for name in names):
        return arg, []
    stripped = server._strip_command_keyword(keyword, arg)
    if stripped is None:
        return arg, []
    address, params = server._getaddr(stripped)
    if not address or not params:
        return arg, []
    kept: list[str] = []
    extra: list[str] = []
    for word in params.split():
        name, eq, value = word.partition("=")
        if name.upper() in names and eq and value:
            extra.append(word)
        else:
            kept.append(word)
    if not extra:
        return arg, []
    head = stripped[: len(stripped) - len(params)].rstrip()
    return f"{keyword}{head} {' '.join(kept)}".rstrip(), extra
