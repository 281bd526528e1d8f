"""The relay's SMTP behaviour over real sockets, with scanning off (pass-through):
greeting, extensions, admission, parameters, size, long lines, faults of the next hop,
shutdown. Scanning verdicts are in test_verdicts.py."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from dlp.errors import ConfigError
from dlp.smtp import replies
from dlp.smtp.relay import Relay
from dlp.store import Store
from tests.smtp.client import Ledger, Outcome, exchange, make_message, send
from tests.smtp.conftest import RelayFactory, relay_settings
from tests.smtp.sink import Sink, start_sink

REPORT: dict[str, dict[str, int]] = {}


def _ok(outcome: Outcome, reply: str) -> None:
    assert f"{outcome.code} {outcome.text}" == reply


def _hop(sink: Sink) -> str:
    return f"smtp://127.0.0.1:{sink.port}"


async def test_greeting_and_extensions(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink), max_message_bytes=123456)

    def talk() -> tuple[bytes, bytes]:
        with smtplib.SMTP() as client:
            _, greeting = client.connect("127.0.0.1", relay.port)
            _, ehlo = client.ehlo("client.test")
            return greeting, ehlo

    greeting, ehlo = await asyncio.to_thread(talk)
    assert greeting == b"relay.test ESMTP"
    assert ehlo.split(b"\n") == [
        b"relay.test",
        b"SIZE 123456",
        b"8BITMIME",
        b"SMTPUTF8",
        b"PIPELINING",
        b"DSN",
        b"ENHANCEDSTATUSCODES",
        b"XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE",
        b"HELP",
    ]


def _dialogue(port: int, commands: list[bytes]) -> list[bytes]:
    """Send each command and collect its reply (the last line of a multi-line one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        stream = conn.makefile("rwb")
        return [stream.readline().rstrip(), *exchange(stream, commands)]


async def test_every_reply_has_an_enhanced_status_code(make_relay: RelayFactory, sink: Sink) -> None:
    """ENHANCEDSTATUSCODES is announced, so (RFC 2034) every 2xx/4xx/5xx reply but the
    greeting and the EHLO/HELO answers carries an RFC 3463 code; aiosmtpd's own replies
    ("250 OK", "503 Error: nested MAIL command") had none."""
    relay = await make_relay(_hop(sink))
    commands = [
        b"EHLO client.test",
        b"NOOP",
        b"VRFY bob@partner.example",
        b"HELP MAIL",
        b"MAIL FROM:<alice@corp.example>",
        b"MAIL FROM:<alice@corp.example>",
        b"RCPT TO:<bob@partner.example>",
        b"RCPT TO:",
        b"BDAT 5 LAST",
        b"RSET",
        b"DATA",
        b"HELO client.test",
        b"QUIT",
    ]
    seen = await asyncio.to_thread(_dialogue, relay.port, commands)
    assert seen == [
        b"220 relay.test ESMTP",
        b"250 HELP",
        b"250 2.0.0 OK",
        b"252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
        b"250 2.0.0 Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
        b"250 2.0.0 OK",
        b"503 5.5.1 Error: nested MAIL command",
        b"250 2.0.0 OK",
        b"501 5.5.4 Syntax: RCPT TO: <address> [SP <mail-parameters>]",
        b'500 5.5.2 Error: command "BDAT" not recognized',
        b"250 2.0.0 OK",
        b"503 5.5.1 Error: need RCPT command",
        b"250 relay.test",
        b"221 2.0.0 Bye",
    ]
    assert sink.received == []


def _pipelined(port: int, groups: list[tuple[bytes, int]]) -> list[bytes]:
    """Send each group of commands in one write and read its `count` replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        stream = conn.makefile("rwb")
        seen = [stream.readline().rstrip()]
        for group, count in groups:
            stream.write(group)
            stream.flush()
            for _ in range(count):
                while (line := stream.readline())[3:4] == b"-":
                    continue
                seen.append(line.rstrip())
        return seen


async def test_pipelined_burst_of_three_messages(make_relay: RelayFactory, sink: Sink) -> None:
    """PIPELINING is announced: MAIL, RCPTs and DATA in one packet, the message, its "."
    and the next transaction's commands in the next, three messages in one session."""
    relay = await make_relay(_hop(sink))
    bodies = [make_message(f"burst-{n}") for n in range(3)]
    envelope = (
        b"MAIL FROM:<alice@corp.example>\r\n"
        b"RCPT TO:<bob@partner.example>\r\nRCPT TO:<carol@corp.example>\r\nDATA\r\n"
    )
    groups = [(b"EHLO client.test\r\n" + envelope, 5)]
    groups += [(bodies[0] + b".\r\nRSET\r\n" + envelope, 6), (bodies[1] + b".\r\n" + envelope, 5)]
    groups += [(bodies[2] + b".\r\nQUIT\r\n", 2)]
    seen = await asyncio.to_thread(_pipelined, relay.port, groups)
    transaction = [b"250 2.0.0 OK", b"250 2.0.0 OK", b"250 2.0.0 OK", b"354 End data with <CR><LF>.<CR><LF>"]
    delivered = replies.DELIVERED.encode()
    assert seen == [
        b"220 relay.test ESMTP",
        b"250 HELP",
        *transaction,
        delivered,
        b"250 2.0.0 OK",
        *transaction,
        delivered,
        *transaction,
        delivered,
        b"221 2.0.0 Bye",
    ]
    assert [r.data for r in sink.received] == bodies
    assert {r.recipients for r in sink.received} == {("bob@partner.example", "carol@corp.example")}


async def test_broken_paths_are_refused_at_once(make_relay: RelayFactory, sink: Sink) -> None:
    """aiosmtpd took these paths with 250; the next hop then refused them and the whole
    message would have been tempfailed (and retried for days) instead of one clear 501."""
    relay = await make_relay(_hop(sink))
    commands = [
        b"EHLO client.test",
        b"MAIL FROM:<alice@corp.example",
        b"MAIL FROM:<alice@corp.example>junk",
        b"MAIL FROM:<>",
        b"RCPT TO:<>",
        b"RCPT TO:<bob@partner.example",
        b"RCPT TO:<bob@partner.example>junk",
        b'RCPT TO:<"odd>name"@partner.example>',
        b'RCPT TO:<"odd name"@partner.example> NOTIFY=NEVER',
        b"RCPT TO:<postmaster>",
        b"DATA",
        b"Subject: paths\r\n\r\nhi\r\n.",
    ]
    seen = await asyncio.to_thread(_dialogue, relay.port, commands)
    ok = b"250 2.0.0 OK"
    sender, recipient = replies.BAD_SENDER.encode(), replies.BAD_RECIPIENT.encode()
    assert seen[1:] == [
        b"250 HELP",
        sender,
        sender,
        ok,
        recipient,
        recipient,
        recipient,
        recipient,
        ok,
        ok,
        b"354 End data with <CR><LF>.<CR><LF>",
        replies.DELIVERED.encode(),
    ]
    [got] = sink.received
    assert got.recipients == ('"odd name"@partner.example', "postmaster")
    assert got.sender == "<>"


async def test_recipients_past_the_limit_get_452_and_the_others_the_message(
    make_relay: RelayFactory, sink: Sink
) -> None:
    """The first `max_recipients` are accepted; each further RCPT gets 452 4.5.3, so the
    client sends the message to them in a later transaction (RFC 5321 4.5.3.1.10)."""
    relay = await make_relay(_hop(sink), max_recipients=3)
    commands = [
        b"EHLO client.test",
        b"MAIL FROM:<alice@corp.example>",
        *(b"RCPT TO:<r%d@partner.example>" % n for n in range(5)),
        b"DATA",
        b"Subject: many\r\n\r\nhi\r\n.",
        b"MAIL FROM:<alice@corp.example>",
        b"RCPT TO:<r3@partner.example>",
        b"RCPT TO:<r4@partner.example>",
        b"DATA",
        b"Subject: many\r\n\r\nhi\r\n.",
    ]
    seen = await asyncio.to_thread(_dialogue, relay.port, commands)
    ok, more = b"250 2.0.0 OK", replies.TOO_MANY_RECIPIENTS.encode()
    data, delivered = b"354 End data with <CR><LF>.<CR><LF>", replies.DELIVERED.encode()
    assert seen[1:] == [b"250 HELP", ok, ok, ok, ok, more, more, data, delivered, ok, ok, ok, data, delivered]
    assert [r.recipients for r in sink.received] == [
        ("r0@partner.example", "r1@partner.example", "r2@partner.example"),
        ("r3@partner.example", "r4@partner.example"),
    ]


async def test_pass_through_is_byte_identical_and_strips_forged_headers(
    make_relay: RelayFactory, sink: Sink
) -> None:
    relay = await make_relay(_hop(sink))
    original = make_message("m1", body="caf\u00e9 8bit body\n.dot line\n", attachment=b"\x00\x01" * 50)
    forged = b"X-DLP-Verdict: allow\r\nx-dlp-incident: forged\r\n\tcontinued\r\n" + original
    outcome = await asyncio.to_thread(send, relay.port, forged, mail_options=["BODY=8BITMIME"])
    _ok(outcome, replies.DELIVERED)
    [got] = sink.received
    assert got.data == original
    assert got.sender == "alice@corp.example"
    assert got.recipients == ("bob@partner.example",)


async def test_parameters_pass_through_verbatim(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink))
    data = make_message("m2")
    outcome = await asyncio.to_thread(
        send,
        relay.port,
        data,
        sender="\u00e9l\u00e8ve@corp.example",
        recipients=["bob@partner.example", "carol@partner.example"],
        mail_options=["BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "ENVID=Q7x+2Bz"],
        rcpt_options=["NOTIFY=FAILURE,DELAY", "ORCPT=rfc822;Bob@Partner.example"],
    )
    _ok(outcome, replies.DELIVERED)
    [got] = sink.received
    assert got.mail_options == (
        f"FROM:<\u00e9l\u00e8ve@corp.example> SIZE={len(data)} BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=Q7x+2Bz",
    )
    params = "NOTIFY=FAILURE,DELAY ORCPT=rfc822;Bob@Partner.example"
    assert got.rcpt_options == (f"TO:<bob@partner.example> {params}", f"TO:<carol@partner.example> {params}")


async def test_long_dsn_parameters_fit(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink))
    recipient = "r" * 60 + "@" + "d" * 180 + ".example"
    orcpt = "ORCPT=rfc822;" + recipient
    options = ["RET=FULL", "ENVID=" + "E" * 100]
    rcpt = ["NOTIFY=SUCCESS,FAILURE,DELAY", orcpt]
    data = make_message("m-dsn")
    outcome = await asyncio.to_thread(
        send, relay.port, data, recipients=[recipient], mail_options=options, rcpt_options=rcpt
    )
    _ok(outcome, replies.DELIVERED)
    [got] = sink.received
    assert got.rcpt_options == (f"TO:<{recipient}> NOTIFY=SUCCESS,FAILURE,DELAY {orcpt}",)


async def test_null_sender_and_xforward(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink))
    outcome = await asyncio.to_thread(
        send, relay.port, make_message("m3"), sender="", xforward="NAME=mx.example ADDR=192.0.2.7 PROTO=ESMTP"
    )
    _ok(outcome, replies.DELIVERED)
    assert [r.sender for r in sink.received] == ["<>"]
    assert sink.xforward == ["NAME=mx.example ADDR=192.0.2.7 PROTO=ESMTP"]
    bad = await asyncio.to_thread(send, relay.port, make_message("m4"), xforward="COLOR=blue")
    _ok(bad, replies.XFORWARD_SYNTAX)


async def test_client_outside_networks_refused_at_connect(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink), client_networks=["10.0.0.0/8"])
    outcome = await asyncio.to_thread(send, relay.port, make_message("m5"))
    _ok(outcome, replies.CLIENT_REJECTED)
    assert sink.received == []


@pytest.mark.parametrize(
    ("smtp", "message"),
    [
        ({"client_networks": ["10.0.0.0/33"]}, "smtp.client_networks"),
        ({"next_hop": "ftp://x"}, "next hop"),
        ({"scan": True}, "no scan pool"),
    ],
)
def test_bad_configuration_is_a_config_error(
    tmp_path: Path, store: Store, smtp: dict[str, Any], message: str
) -> None:
    values = {"next_hop": "maildir:/tmp/x", **smtp}
    with pytest.raises(ConfigError, match=message):
        Relay(relay_settings(tmp_path, **values), None, store)


async def test_connection_limit(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink), max_connections=1)
    first = await asyncio.to_thread(smtplib.SMTP, "127.0.0.1", relay.port)
    try:
        outcome = await asyncio.to_thread(send, relay.port, make_message("m6"))
        _ok(outcome, replies.OVERLOADED)
    finally:
        await asyncio.to_thread(first.quit)


@pytest.mark.parametrize("announce", [False, True])
async def test_too_big(make_relay: RelayFactory, sink: Sink, announce: bool) -> None:
    relay = await make_relay(_hop(sink), max_message_bytes=2000)
    data = make_message("m7", body="x" * 70 + "\n" + "y" * 70 * 40)
    options = [f"SIZE={len(data)}"] if announce else []
    outcome = await asyncio.to_thread(send, relay.port, data, mail_options=options)
    _ok(outcome, replies.TOO_BIG)
    assert sink.received == []


async def test_long_line_is_relayed_not_bounced(make_relay: RelayFactory, sink: Sink) -> None:
    relay = await make_relay(_hop(sink))
    data = make_message("m8", body="y" * 5000 + "\n")
    outcome = await asyncio.to_thread(send, relay.port, data)
    _ok(outcome, replies.DELIVERED)
    assert [r.data for r in sink.received] == [data]


async def test_maildir_next_hop(make_relay: RelayFactory, tmp_path: Path) -> None:
    relay = await make_relay(f"maildir:{tmp_path / 'outbox'}")
    data = make_message("m9")
    _ok(await asyncio.to_thread(send, relay.port, data), replies.DELIVERED)
    assert [p.read_bytes() for p in (tmp_path / "outbox" / "new").iterdir()] == [data]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BOB = "bob@partner.example"
FAULTS = [
    # name, sink settings, recipients, expected reply
    ("next hop down", None, ["bob@partner.example"], replies.NEXT_HOP_UNAVAILABLE),
    (
        "RCPT 4xx",
        Sink(rcpt_replies={"bob@partner.example": "450 4.2.1 busy"}),
        None,
        replies.NEXT_HOP_UNAVAILABLE,
    ),
    (
        "RCPT 5xx all",
        Sink(rcpt_replies={"bob@partner.example": "550 5.1.1 unknown"}),
        None,
        replies.NEXT_HOP_REJECTED,
    ),
    (
        "RCPT 5xx one of two",
        Sink(rcpt_replies={"bob@partner.example": "550 5.1.1 unknown"}),
        ["bob@partner.example", "carol@partner.example"],
        replies.NEXT_HOP_UNAVAILABLE,
    ),
    ("DATA 4xx", Sink(data_reply="451 4.3.0 later"), None, replies.NEXT_HOP_UNAVAILABLE),
    ("DATA 5xx", Sink(data_reply="554 5.6.0 no"), None, replies.NEXT_HOP_REJECTED),
    ("DATA hangs past deadline", Sink(data_delay=5.0), None, replies.NEXT_HOP_UNAVAILABLE),
]


@pytest.mark.parametrize(("name", "faulty", "recipients", "reply"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_next_hop_faults(
    make_relay: RelayFactory, name: str, faulty: Sink | None, recipients: list[str] | None, reply: str
) -> None:
    hop_sink = await start_sink(faulty) if faulty is not None else None
    hop = _hop(hop_sink) if hop_sink is not None else f"smtp://127.0.0.1:{_closed_port()}"
    relay = await make_relay(hop, message_timeout_seconds=0.5)
    healthy = await start_sink()
    good_relay = await make_relay(_hop(healthy))
    ledger = Ledger()
    for n in range(3):
        marker = f"{name.replace(' ', '-')}-{n}"
        rcpts = recipients or ["bob@partner.example"]
        outcome = await asyncio.to_thread(send, relay.port, make_message(marker), recipients=rcpts)
        _ok(outcome, reply)
        ledger.record(marker, outcome)
    outcome = await asyncio.to_thread(send, good_relay.port, make_message(f"{name}-ok".replace(" ", "-")))
    ledger.record(f"{name}-ok".replace(" ", "-"), outcome)
    delivered = [r.data for r in (hop_sink.received if hop_sink else [])] + [r.data for r in healthy.received]
    REPORT[name] = ledger.check(delivered)
    print(f"ledger {name}: {REPORT[name]}")
    assert REPORT[name]["accepted"] == 1
    if hop_sink is not None:
        await hop_sink.close()
    await healthy.close()


async def test_stop_lets_in_flight_message_finish(make_relay: RelayFactory) -> None:
    slow = await start_sink(Sink(data_delay=0.5))
    relay: Relay = await make_relay(_hop(slow))
    sending = asyncio.create_task(asyncio.to_thread(send, relay.port, make_message("s1")))
    while not relay.connections or not slow.raw_mail_lines:
        await asyncio.sleep(0.01)
    await relay.stop(grace=5)
    _ok(await sending, replies.DELIVERED)
    assert len(slow.received) == 1
    await slow.close()


async def test_stop_past_grace_answers_421(make_relay: RelayFactory) -> None:
    slow = await start_sink(Sink(data_delay=3.0))
    relay: Relay = await make_relay(_hop(slow))
    sending = asyncio.create_task(asyncio.to_thread(send, relay.port, make_message("s2")))
    while not relay.connections or not slow.raw_mail_lines:
        await asyncio.sleep(0.01)
    await relay.stop(grace=0.2)
    _ok(await sending, replies.SHUTTING_DOWN)
    await slow.close()


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_replies_and_next_hop_failures(make_relay: RelayFactory, sink: Sink) -> None:
    down = await make_relay(f"smtp://127.0.0.1:{_closed_port()}")
    up = await make_relay(_hop(sink))
    before = {
        "4xx": _sample("dlp_smtp_replies_total", {"class": "4xx"}),
        "2xx": _sample("dlp_smtp_replies_total", {"class": "2xx"}),
        "temporary": _sample("dlp_next_hop_failures_total", {"kind": "temporary"}),
    }
    await asyncio.to_thread(send, down.port, make_message("metrics-1"))
    await asyncio.to_thread(send, up.port, make_message("metrics-2"))
    assert _sample("dlp_smtp_replies_total", {"class": "4xx"}) - before["4xx"] == 1
    assert _sample("dlp_smtp_replies_total", {"class": "2xx"}) - before["2xx"] == 1
    assert _sample("dlp_next_hop_failures_total", {"kind": "temporary"}) - before["temporary"] == 1
