"""Delivery to the next hop: parsing, byte-exact SMTP delivery, refusals, faults, Maildir."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.config import Settings, SmtpSettings
from dlp.errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from dlp.smtp.nexthop import (
    NextHop,
    close_idle_connections,
    deliver,
    next_hop_from_settings,
    parse_next_hop,
)
from tests.smtp.sink import Sink, start_sink

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n"
    b".leading dot line\r\nbody \xc3\xa9 8bit\r\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp://127.0.0.1:10026", NextHop("smtp", "127.0.0.1", 10026)),
        ("smtp://relay.example.com", NextHop("smtp", "relay.example.com", 25)),
        ("smtp://[::1]:2525", NextHop("smtp", "::1", 2525)),
        ("maildir:./var/outbox", NextHop("maildir", path=Path("./var/outbox"))),
        (" maildir:/srv/mail ", NextHop("maildir", path=Path("/srv/mail"))),
    ],
)
def test_parse_next_hop(text: str, expected: NextHop) -> None:
    assert parse_next_hop(text) == expected


@pytest.mark.parametrize(
    "text", ["", "maildir:", "smtp://", "smtp://host:notaport", "http://x:1", "smtp://u@h:1", "smtp://h:1/x"]
)
def test_parse_next_hop_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_next_hop(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parse_next_hop_only_raises_config_error(text: str) -> None:
    try:
        hop = parse_next_hop(text)
    except ConfigError:
        return
    assert hop.kind in ("smtp", "maildir")


def test_next_hop_from_settings_takes_tls_mode() -> None:
    settings = Settings(smtp=SmtpSettings(next_hop="smtp://127.0.0.1:1", next_hop_tls="required"))
    assert next_hop_from_settings(settings) == NextHop("smtp", "127.0.0.1", 1, tls="required")


async def test_deliver_byte_identical_with_parameters() -> None:
    sink = await start_sink()
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}")
    await deliver(
        hop,
        "a@example.com",
        ["b@example.org", "c@example.org"],
        MESSAGE,
        timeout=5,
        mail_options=["SIZE=1", "BODY=8BITMIME", "RET=HDRS", "ENVID=AbC+2Bx"],
        rcpt_options_each=[["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;B@example.org"], []],
    )
    await sink.close()
    [got] = sink.received
    assert got.data == MESSAGE
    assert got.sender == "a@example.com"
    assert got.recipients == ("b@example.org", "c@example.org")
    assert got.mail_options == (
        f"FROM:<a@example.com> SIZE={len(MESSAGE)} BODY=8BITMIME RET=HDRS ENVID=AbC+2Bx",
    )
    assert got.rcpt_options == (
        "TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;B@example.org",
        "TO:<c@example.org>",
    )


async def test_connection_reused_and_replaced_when_closed() -> None:
    sink = await start_sink()
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}")
    for n in range(3):
        await deliver(hop, "a@x.org", ["b@y.org"], MESSAGE + b"%d\r\n" % n, timeout=5)
    assert len(sink.connections) == 1
    sink.drop_connections()
    await asyncio.sleep(0.05)
    await deliver(hop, "a@x.org", ["b@y.org"], MESSAGE + b"3\r\n", timeout=5)
    await close_idle_connections()
    await sink.close()
    assert len(sink.connections) == 2
    assert [r.data for r in sink.received] == [MESSAGE + b"%d\r\n" % n for n in range(4)]


async def test_deliver_null_sender() -> None:
    sink = await start_sink()
    await deliver(
        parse_next_hop(f"smtp://127.0.0.1:{sink.port}"), "<>", ["b@example.org"], MESSAGE, timeout=5
    )
    await sink.close()
    assert [r.mail_options for r in sink.received] == [(f"FROM:<> SIZE={len(MESSAGE)}",)]


@pytest.mark.parametrize(
    ("rcpt_replies", "error"),
    [
        ({"b@example.org": "550 5.1.1 no such user"}, TemporaryDeliveryError),
        ({"b@example.org": "450 4.2.0 busy"}, TemporaryDeliveryError),
        ({"b@example.org": "550 5.1.1 no", "c@example.org": "553 5.1.3 no"}, PermanentDeliveryError),
        ({"b@example.org": "550 5.1.1 no", "c@example.org": "451 4.3.0 later"}, TemporaryDeliveryError),
    ],
)
async def test_refused_recipient_fails_whole_message_before_data(
    rcpt_replies: dict[str, str], error: type[Exception]
) -> None:
    sink = await start_sink(Sink(rcpt_replies=rcpt_replies))
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}")
    with pytest.raises(error):
        await deliver(hop, "a@example.com", ["b@example.org", "c@example.org"], MESSAGE, timeout=5)
    await sink.close()
    assert sink.received == []


@pytest.mark.parametrize(
    ("data_reply", "error", "code"),
    [
        ("451 4.3.0 try later", TemporaryDeliveryError, 451),
        ("421 4.3.2 shutting down", TemporaryDeliveryError, 421),
        ("554 5.7.1 rejected", PermanentDeliveryError, 554),
    ],
)
async def test_data_refused(data_reply: str, error: type[Exception], code: int) -> None:
    sink = await start_sink(Sink(data_reply=data_reply))
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}")
    with pytest.raises(error) as caught:
        await deliver(hop, "a@example.com", ["b@example.org"], MESSAGE, timeout=5)
    await sink.close()
    assert getattr(caught.value, "code", None) == code


async def test_next_hop_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TemporaryDeliveryError):
        await deliver(parse_next_hop(f"smtp://127.0.0.1:{port}"), "a@x.org", ["b@y.org"], MESSAGE, timeout=5)


async def test_next_hop_hanging_past_timeout() -> None:
    sink = await start_sink(Sink(data_delay=3.0))
    started = time.monotonic()
    with pytest.raises(TemporaryDeliveryError):
        await deliver(
            parse_next_hop(f"smtp://127.0.0.1:{sink.port}"), "a@x.org", ["b@y.org"], MESSAGE, timeout=0.5
        )
    assert time.monotonic() - started < 2.0
    await sink.close()


async def test_tls_required_without_starttls() -> None:
    sink = await start_sink()
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}", tls="required")
    with pytest.raises(TemporaryDeliveryError, match="STARTTLS"):
        await deliver(hop, "a@x.org", ["b@y.org"], MESSAGE, timeout=5)
    await sink.close()
    assert sink.received == []


async def test_smtputf8_to_next_hop_without_it_fails_permanently() -> None:
    sink = await start_sink(utf8=False)
    hop = parse_next_hop(f"smtp://127.0.0.1:{sink.port}")
    with pytest.raises(PermanentDeliveryError):
        await deliver(hop, "é@x.org", ["b@y.org"], MESSAGE, timeout=5, mail_options=["SMTPUTF8"])
    await sink.close()


async def test_maildir_delivery(tmp_path: Path) -> None:
    hop = parse_next_hop(f"maildir:{tmp_path / 'outbox'}")
    await deliver(hop, "a@x.org", ["b@y.org"], MESSAGE, timeout=5)
    await deliver(hop, "a@x.org", ["b@y.org"], MESSAGE + b"2", timeout=5)
    new = sorted((tmp_path / "outbox" / "new").iterdir())
    assert sorted(p.read_bytes() for p in new) == [MESSAGE, MESSAGE + b"2"]
    assert list((tmp_path / "outbox" / "tmp").iterdir()) == []
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in new)


async def test_maildir_unwritable_is_temporary(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(TemporaryDeliveryError):
        await deliver(parse_next_hop(f"maildir:{blocker}"), "a@x.org", ["b@y.org"], MESSAGE, timeout=5)
