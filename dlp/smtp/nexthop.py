"""Handing a message to the next hop: an SMTP server (`smtp://host:port`) or a Maildir.

Used by the relay for allowed mail and by quarantine release. `deliver` returns only once
the next hop has accepted the message (SMTP 250 to the end of DATA, or the Maildir file
renamed into `new/` and its directory fsynced); otherwise it raises
`TemporaryDeliveryError` (4xx, refused connection, timeout, disconnect, TLS failure) or
`PermanentDeliveryError` (5xx to MAIL, to every RCPT, or to DATA).

Recipients refused by the next hop: the transaction is driven command by command (not
with aiosmtplib's `sendmail`, which goes on to DATA after a partial refusal). If any
recipient is refused the envelope is reset before DATA, so nobody receives the message
and a retry cannot duplicate it; the whole message then fails temporarily, or permanently
when every recipient got a 5xx. See `deploy/postfix/README.md`.

ESMTP parameters of the original transaction pass through verbatim where the next hop
announces the extension (BODY needs 8BITMIME; RET, ENVID, NOTIFY, ORCPT need DSN; AUTH=
needs AUTH); SIZE is recomputed from the bytes actually sent; SMTPUTF8 mail to a next hop
without SMTPUTF8 fails permanently with `SmtpUtf8Unsupported` (RFC 6531 forbids
downgrading it silently; the answer is 554 5.6.7).

Connections are reused, as Postfix's SMTP client does: after a successful transaction
the connection waits (per event loop, up to 10 s and 100 messages) for the next message
to the same hop. A reused connection found closed before MAIL was accepted is replaced
by a fresh one within the same attempt.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import aiosmtplib

from dlp.config import Settings
from dlp.errors import ConfigError, PermanentDeliveryError, SmtpUtf8Unsupported, TemporaryDeliveryError
from dlp.model import new_id

__all__ = [
    "NextHop",
    "TlsMode",
    "close_idle_connections",
    "deliver",
    "needs_smtputf8",
    "next_hop_from_settings",
    "parse_next_hop",
]

TlsMode = Literal["none", "opportunistic", "required"]

_DEFAULT_SMTP_PORT = 25
_MAIL_PARAM_EXTENSION = {"BODY": "8bitmime", "RET": "dsn", "ENVID": "dsn", "AUTH": "auth"}
_RCPT_PARAM_EXTENSION = {"NOTIFY": "dsn", "ORCPT": "dsn"}


@dataclass(frozen=True)
class NextHop:
    """Where accepted mail goes: `kind` "smtp" (host, port, TLS mode) or "maildir" (path)."""

    kind: Literal["smtp", "maildir"]
    host: str = ""
    port: int = 0
    path: Path | None = None
    tls: TlsMode = "opportunistic"

    def __str__(self) -> str:
        if self.kind == "maildir":
            return f"maildir:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smtp://{host}:{self.port}"


def parse_next_hop(text: str, tls: TlsMode = "opportunistic") -> NextHop:
    """Read `smtp://HOST[:PORT]` (port 25 by default, `[v6]` allowed) or `maildir:PATH`.

    Raises `ConfigError` for anything else so a typo stops `dlp serve` at start.
    """
    text = text.strip()
    if text.startswith("maildir:"):
        path = text[len("maildir:") :]
        if not path:
            raise ConfigError(f"next hop '{text}': maildir needs a path")
        return NextHop(kind="maildir", path=Path(path), tls=tls)
    if text.startswith("smtp://"):
        parts = urlsplit(text)
        try:
            port = parts.port or _DEFAULT_SMTP_PORT
        except ValueError as exc:
            raise ConfigError(f"next hop '{text}': bad port") from exc
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
            raise ConfigError(f"next hop '{text}' is not smtp://HOST:PORT")
        return NextHop(kind="smtp", host=parts.hostname, port=port, tls=tls)
    raise ConfigError(f"next hop '{text}' is neither smtp://HOST:PORT nor maildir:PATH")


def next_hop_from_settings(settings: Settings) -> NextHop:
    """The configured next hop with the configured TLS mode (`smtp.next_hop_tls`)."""
    return parse_next_hop(settings.smtp.next_hop, tls=settings.smtp.next_hop_tls)


async def deliver(
    hop: NextHop,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    *,
    timeout: float,
    mail_options: Sequence[str] = (),
    rcpt_options: Sequence[str] = (),
    rcpt_options_each: Sequence[Sequence[str]] | None = None,
    xforward: Mapping[str, str] | None = None,
) -> None:
    """Deliver one message; return only once the next hop has accepted it.

    `timeout` bounds the whole attempt. `rcpt_options` apply to every recipient;
    `rcpt_options_each` (one sequence per recipient, e.g. DSN NOTIFY/ORCPT) replaces them
    when given. `xforward` (the original client's NAME, ADDR, ...) is passed on when the
    next hop announces XFORWARD, so its logs name that client. Raises
    `TemporaryDeliveryError` or `PermanentDeliveryError`.
    """
    if not recipients:
        raise PermanentDeliveryError("no recipients", code=554)
    if hop.kind == "maildir":
        assert hop.path is not None
        try:
            await asyncio.wait_for(asyncio.to_thread(_write_maildir, hop.path, data), timeout)
        except (OSError, TimeoutError) as exc:
            raise TemporaryDeliveryError(f"maildir delivery failed: {type(exc).__name__}") from exc
        return
    per_rcpt = (
        [list(o) for o in rcpt_options_each]
        if rcpt_options_each is not None
        else [list(rcpt_options)] * len(recipients)
    )
    if len(per_rcpt) != len(recipients):
        raise ValueError("rcpt_options_each needs one entry per recipient")
    message = _Message(sender, recipients, data, mail_options, per_rcpt, xforward)
    connection = _take_idle(hop)
    try:
        async with asyncio.timeout(timeout):
            if connection is not None:
                try:
                    await _transaction(connection, hop, message)
                except _StaleConnection:
                    connection.client.close()
                    connection = None
            if connection is None:
                connection = await _open(hop, timeout)
                await _transaction(connection, hop, message)
    except TimeoutError as exc:
        _discard(connection)
        raise TemporaryDeliveryError(f"next hop {hop} did not answer within {timeout:.0f} s") from exc
    except aiosmtplib.SMTPResponseException as exc:
        _discard(connection)
        raise TemporaryDeliveryError(f"next hop {hop}: {exc.code} {exc.message}", code=exc.code) from exc
    except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        _discard(connection)
        raise TemporaryDeliveryError(f"next hop {hop} unavailable: {type(exc).__name__}") from exc
    except BaseException:
        _discard(connection)
        raise
    _put_idle(hop, connection)


async def close_idle_connections() -> None:
    """Say QUIT on the connections kept open for reuse by this event loop (at shutdown)."""
    pools = _IDLE.pop(asyncio.get_running_loop(), {})
    for connections in pools.values():
        for connection in connections:
            try:
                async with asyncio.timeout(2):
                    await connection.client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                connection.client.close()


@dataclass
class _Connection:
    """An open, greeted (and, per the TLS mode, encrypted) connection to a next hop."""

    client: aiosmtplib.SMTP
    uses: int = 0
    idle_since: float = 0.0


class _StaleConnection(Exception):
    """A reused connection turned out closed before MAIL was accepted: open a new one."""


_IDLE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[NextHop, list[_Connection]]] = (
    weakref.WeakKeyDictionary()
)
_IDLE_SECONDS = 10.0
_MAX_USES = 100


def _take_idle(hop: NextHop) -> _Connection | None:
    pool = _IDLE.get(asyncio.get_running_loop(), {}).get(hop, [])
    now = time.monotonic()
    while pool:
        connection = pool.pop()
        if connection.client.is_connected and now - connection.idle_since < _IDLE_SECONDS:
            return connection
        connection.client.close()
    return None


def _put_idle(hop: NextHop, connection: _Connection) -> None:
    connection.uses += 1
    if connection.uses >= _MAX_USES or not connection.client.is_connected:
        connection.client.close()
        return
    connection.idle_since = time.monotonic()
    _IDLE.setdefault(asyncio.get_running_loop(), {}).setdefault(hop, []).append(connection)


def _discard(connection: _Connection | None) -> None:
    if connection is not None:
        connection.client.close()


async def _open(hop: NextHop, timeout: float) -> _Connection:
    client = aiosmtplib.SMTP(
        hostname=hop.host,
        port=hop.port,
        timeout=timeout,
        start_tls=False,
        local_hostname=_local_hostname(),
    )
    connection = _Connection(client)
    try:
        await client.connect()
        await client.ehlo()
        if hop.tls != "none":
            if client.supports_extension("starttls"):
                await client.starttls(validate_certs=hop.tls == "required")
                await client.ehlo()
            elif hop.tls == "required":
                raise TemporaryDeliveryError(f"next hop {hop} does not offer STARTTLS (TLS required)")
    except BaseException:
        client.close()
        raise
    return connection


@dataclass(frozen=True)
class _Message:
    """One transaction's envelope, parameters and content."""

    sender: str
    recipients: Sequence[str]
    data: bytes
    mail_options: Sequence[str]
    per_rcpt: list[list[str]]
    xforward: Mapping[str, str] | None


async def _transaction(connection: _Connection, hop: NextHop, message: _Message) -> None:
    client = connection.client
    reused = connection.uses > 0
    mail_params = _mail_params(client, message.mail_options, len(message.data))
    try:
        if message.xforward:
            await _xforward(client, message.xforward)
        reply = await client.execute_command(b"MAIL", _address("FROM", message.sender), *mail_params)
    except aiosmtplib.SMTPServerDisconnected:
        if reused:
            raise _StaleConnection from None
        raise
    if reused and reply.code == 421:
        raise _StaleConnection
    _check(reply, hop, "MAIL")
    refused: list[int] = []
    recipients = message.recipients
    for recipient, options in zip(recipients, message.per_rcpt, strict=True):
        params = _filter(client, options, _RCPT_PARAM_EXTENSION)
        reply = await client.execute_command(b"RCPT", _address("TO", recipient), *params)
        if reply.code not in (250, 251):
            refused.append(reply.code)
    if refused:
        await _reset(client)
        every_permanent = len(refused) == len(recipients) and all(code >= 500 for code in refused)
        error = PermanentDeliveryError if every_permanent else TemporaryDeliveryError
        codes = ",".join(str(code) for code in sorted(set(refused)))
        raise error(
            f"next hop {hop} refused {len(refused)} of {len(recipients)} recipients ({codes})",
            code=max(refused) if every_permanent else min(refused),
        )
    try:
        await client.data(message.data)
    except aiosmtplib.SMTPDataError as exc:
        _check(aiosmtplib.SMTPResponse(exc.code, exc.message), hop, "DATA")


async def _xforward(client: aiosmtplib.SMTP, values: Mapping[str, str]) -> None:
    """Send the attributes the next hop announces; its refusal only costs the log line."""
    announced = client.esmtp_extensions.get("xforward", "").upper().split()
    words = [
        f"{name}={value}"
        for name, value in values.items()
        if name.upper() in announced and value and not any(c in value for c in " \r\n")
    ]
    if words:
        await client.execute_command(b"XFORWARD", " ".join(words).encode("utf-8", "replace"))


def _check(reply: aiosmtplib.SMTPResponse, hop: NextHop, command: str) -> None:
    if 200 <= reply.code < 300:
        return
    error = PermanentDeliveryError if reply.code >= 500 else TemporaryDeliveryError
    raise error(f"next hop {hop} answered {reply.code} to {command}: {reply.message}", code=reply.code)


async def _reset(client: aiosmtplib.SMTP) -> None:
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        return


def _address(keyword: str, address: str) -> bytes:
    if address in ("", "<>"):
        return f"{keyword}:<>".encode()
    if "\r" in address or "\n" in address or ">" in address:
        raise PermanentDeliveryError("address contains forbidden characters", code=501)
    return f"{keyword}:<{address}>".encode()


def _mail_params(client: aiosmtplib.SMTP, options: Sequence[str], size: int) -> list[bytes]:
    params = [o for o in options if o.partition("=")[0].upper() != "SIZE"]
    if any(o.upper() == "SMTPUTF8" for o in params) and not client.supports_extension("smtputf8"):
        raise SmtpUtf8Unsupported("554 5.6.7 next hop does not support SMTPUTF8", code=554)
    out = _filter(client, params, _MAIL_PARAM_EXTENSION)
    if client.supports_extension("size"):
        out.insert(0, f"SIZE={size}".encode("ascii"))
    return out


def _filter(client: aiosmtplib.SMTP, options: Sequence[str], needs: dict[str, str]) -> list[bytes]:
    out = []
    for option in options:
        if "\r" in option or "\n" in option or " " in option:
            raise PermanentDeliveryError("ESMTP parameter contains forbidden characters", code=501)
        extension = needs.get(option.partition("=")[0].upper())
        if extension is None or client.supports_extension(extension):
            out.append(option.encode())
    return out


def needs_smtputf8(sender: str, recipients: Sequence[str], data: bytes) -> bool:
    """Whether a message can only travel with SMTPUTF8 (RFC 6531): a non-ASCII envelope
    address, or UTF-8 in its header section (RFC 6532 headers; legacy 8-bit bytes that
    are not UTF-8 gain nothing from it). Used where the original MAIL parameters are not
    at hand (quarantine release)."""
    if not (sender.isascii() and all(r.isascii() for r in recipients)):
        return True
    end = _HEADER_END.search(data)
    header = data[: end.start() if end else len(data)]
    if header.isascii():
        return False
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_hostname: str | None = None


def _local_hostname() -> str:
    global _hostname
    if _hostname is None:
        _hostname = socket.gethostname() or "localhost"
    return _hostname


def _write_maildir(folder: Path, data: bytes) -> None:
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{new_id()}.{os.getpid()}.{_local_hostname()}"
    tmp_path = folder / "tmp" / name
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp_path, folder / "new" / name)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder / "new", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
