"""The end of DATA, byte by byte: only CRLF "." CRLF ends a message (SMTP smuggling
with bare LF or CR must not split one message into two), dot-stuffing is undone, and
pipelined commands after "." are still answered."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlp.config import SmtpSettings
from dlp.smtp import replies
from dlp.smtp.server import RelaySMTP
from tests.smtp.conftest import RelayFactory
from tests.smtp.sink import Sink

HEAD = b"Subject: t\r\n\r\n"

CASES = [
    # name, bytes after "354" (dot-stuffed, with the terminator), content the next hop gets
    ("plain", HEAD + b"hello\r\n.\r\n", HEAD + b"hello\r\n"),
    ("empty body", HEAD + b".\r\n", HEAD),
    ("line ending in a dot", HEAD + b"The end.\r\nMore.\r\n.\r\n", HEAD + b"The end.\r\nMore.\r\n"),
    ("dot-stuffed lines", HEAD + b"..\r\n...x\r\n.y\r\n.\r\n", HEAD + b".\r\n..x\r\ny\r\n"),
    # one message each, never two; bare line ends reach the next hop as CRLF (aiosmtplib
    # normalises them and dot-stuffs the result, so the "." line stays message text)
    ("smuggling LF.LF", HEAD + b"a\n.\nMAIL FROM:<x@y>\r\n.\r\n", HEAD + b"a\r\n.\r\nMAIL FROM:<x@y>\r\n"),
    ("smuggling CRLF.LF", HEAD + b"a\r\n.\nb\r\n.\r\n", HEAD + b"a\r\n\r\nb\r\n"),
    ("smuggling LF.CRLF", HEAD + b"a\n.\r\nb\r\n.\r\n", HEAD + b"a\r\n.\r\nb\r\n"),
    ("dot without line end", HEAD + b"a.\r\n.\r\n", HEAD + b"a.\r\n"),
]


def _converse(port: int, payload: bytes) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        stream = conn.makefile("rwb")
        stream.readline()
        replies_seen = []
        commands = [b"EHLO client.test", b"MAIL FROM:<alice@corp.example>", b"RCPT TO:<bob@partner.example>"]
        for command in [*commands, b"DATA"]:
            stream.write(command + b"\r\n")
            stream.flush()
            while (line := stream.readline())[3:4] == b"-":
                continue
            replies_seen.append(line.rstrip())
        stream.write(payload + b"QUIT\r\n")
        stream.flush()
        replies_seen.append(stream.readline().rstrip())
        replies_seen.append(stream.readline().rstrip())
        return replies_seen


@pytest.mark.parametrize(("name", "payload", "content"), CASES, ids=[c[0] for c in CASES])
async def test_end_of_data(
    make_relay: RelayFactory, sink: Sink, name: str, payload: bytes, content: bytes
) -> None:
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}")
    seen = await asyncio.to_thread(_converse, relay.port, payload)
    assert seen[3] == b"354 End data with <CR><LF>.<CR><LF>"
    assert seen[4:] == [replies.DELIVERED.encode(), b"221 2.0.0 Bye"]
    assert [r.data for r in sink.received] == [content]


async def test_oversized_data_is_read_to_the_end_then_refused(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}", max_message_bytes=5000)
    seen = await asyncio.to_thread(_converse, relay.port, HEAD + (b"y" * 99 + b"\r\n") * 200 + b".\r\n")
    assert seen[4:] == [replies.TOO_BIG.encode(), b"221 2.0.0 Bye"]
    assert sink.received == []


class _Capture:
    """A DATA handler that keeps what the server made of the data."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert envelope.original_content is not None
        self.contents.append(bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture(scope="module")
def twin_servers() -> Iterator[tuple[int, _Capture, int, _Capture]]:
    """Stock aiosmtpd and RelaySMTP side by side, on a loop in a background thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stock, ours = _Capture(), _Capture()

    async def start() -> tuple[asyncio.Server, asyncio.Server]:
        a = await loop.create_server(lambda: SMTP(stock, loop=loop), "127.0.0.1", 0)
        b = await loop.create_server(
            lambda: RelaySMTP(
                ours,
                admit=lambda _: None,
                on_close=lambda _: None,
                closing=lambda: False,
                max_recipients=SmtpSettings().max_recipients,
                loop=loop,
            ),
            "127.0.0.1",
            0,
        )
        return a, b

    a, b = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield a.sockets[0].getsockname()[1], stock, b.sockets[0].getsockname()[1], ours
    for server in (a, b):
        loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


_PIECES = st.sampled_from([b"a", b".", b"..", b"\r\n", b"\n", b"\r", b" ", b"x.y", b"\r\n.", b"MAIL"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(_PIECES, max_size=30))
def test_same_content_as_stock_aiosmtpd(
    twin_servers: tuple[int, _Capture, int, _Capture], body: list[bytes]
) -> None:
    stock_port, stock, our_port, ours = twin_servers
    payload = HEAD + b"".join(body) + b"\r\n.\r\n"
    before = (len(stock.contents), len(ours.contents))
    first = _converse(stock_port, payload)
    second = _converse(our_port, payload)
    assert [r[:3] for r in first] == [r[:3] for r in second]
    assert stock.contents[before[0] :] == ours.contents[before[1] :]
