"""STARTTLS inbound (certificate from the settings) and TLS to the next hop."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from pathlib import Path

import pytest

from dlp.errors import TemporaryDeliveryError
from dlp.smtp import replies
from dlp.smtp.nexthop import close_idle_connections, deliver, parse_next_hop
from tests.smtp.client import exchange, make_message
from tests.smtp.conftest import RelayFactory
from tests.smtp.sink import Sink, start_sink
from tests.smtp.tls import self_signed


async def test_starttls_inbound(make_relay: RelayFactory, sink: Sink, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}", tls_cert=str(cert), tls_key=str(key))
    data = make_message("tls-1")

    def talk() -> tuple[bool, str | None, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", relay.port) as client:
            client.ehlo("client.test")
            offered = client.has_extn("starttls")
            client.starttls(context=ssl.create_default_context(cafile=str(cert)))
            version = client.sock.version() if isinstance(client.sock, ssl.SSLSocket) else None
            client.ehlo("client.test")
            client.mail("alice@corp.example")
            client.rcpt("bob@partner.example")
            return offered, version, client.data(data)

    offered, version, (code, text) = await asyncio.to_thread(talk)
    assert offered and version in ("TLSv1.2", "TLSv1.3")
    assert f"{code} {text.decode()}" == replies.DELIVERED
    assert [r.data for r in sink.received] == [data]


@pytest.mark.parametrize(
    ("mode", "delivered"), [("opportunistic", True), ("required", False), ("none", True)]
)
async def test_next_hop_tls(tmp_path: Path, mode: str, delivered: bool) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = await start_sink(tls_context=context)
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}", tls=mode)
    data = make_message(f"tls-{mode}")
    if delivered:
        await deliver(hop, "alice@corp.example", ["bob@partner.example"], data, timeout=5)
    else:
        # required means verified: a self-signed certificate is refused, and so is the mail
        with pytest.raises(TemporaryDeliveryError):
            await deliver(hop, "alice@corp.example", ["bob@partner.example"], data, timeout=5)
    await close_idle_connections()
    await sink.close()
    assert [r.data for r in sink.received] == ([data] if delivered else [])
    assert [r.tls for r in sink.received] == ([mode == "opportunistic"] if delivered else [])


async def test_no_auth_offered_or_accepted_after_starttls(
    make_relay: RelayFactory, sink: Sink, tmp_path: Path
) -> None:
    """aiosmtpd announces AUTH LOGIN PLAIN once TLS is up, with no credentials behind it:
    a client holding a password for the relay would try it, get 535 and defer its mail."""
    cert, key = self_signed(tmp_path)
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}", tls_cert=str(cert), tls_key=str(key))
    data = make_message("tls-auth")

    def talk() -> tuple[list[str], tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", relay.port) as client:
            client.ehlo("client.test")
            client.starttls(context=ssl.create_default_context(cafile=str(cert)))
            client.ehlo("client.test")
            offered = sorted(client.esmtp_features)
            auth = client.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==")
            help_text = client.docmd("HELP")
            client.mail("alice@corp.example")
            client.rcpt("bob@partner.example")
            return offered, auth, help_text, client.data(data)

    offered, auth, help_text, (code, text) = await asyncio.to_thread(talk)
    assert offered == [
        "8bitmime",
        "dsn",
        "enhancedstatuscodes",
        "help",
        "pipelining",
        "size",
        "smtputf8",
        "xforward",
    ]
    assert f"{auth[0]} {auth[1].decode()}" == replies.AUTH_UNSUPPORTED
    assert b"AUTH" not in help_text[1]
    assert f"{code} {text.decode()}" == replies.DELIVERED
    assert [r.data for r in sink.received] == [data]


async def test_commands_pipelined_behind_starttls_are_discarded(
    make_relay: RelayFactory, sink: Sink, tmp_path: Path
) -> None:
    """PIPELINING is announced, so a MAIL smuggled in the same packet as STARTTLS (sent in
    clear, CVE-2011-0411 style) must not count once TLS is up."""
    cert, key = self_signed(tmp_path)
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}", tls_cert=str(cert), tls_key=str(key))

    def talk() -> list[bytes]:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as conn:
            plain = conn.makefile("rwb")
            seen = [plain.readline().rstrip()]
            exchange(plain, [b"EHLO client.test"])
            plain.write(b"STARTTLS\r\nMAIL FROM:<mallory@evil.example>\r\n")
            plain.flush()
            seen.append(plain.readline().rstrip())
            context = ssl.create_default_context(cafile=str(cert))
            with context.wrap_socket(conn, server_hostname="localhost") as secure:
                stream = secure.makefile("rwb")
                commands = (b"EHLO client.test", b"RCPT TO:<bob@partner.example>", b"QUIT")
                seen.extend(exchange(stream, commands))
            return seen

    seen = await asyncio.to_thread(talk)
    assert seen == [
        b"220 relay.test ESMTP",
        b"220 2.0.0 Ready to start TLS",
        b"250 HELP",
        b"503 5.5.1 Error: need MAIL command",
        b"221 2.0.0 Bye",
    ]
    assert sink.received == []
