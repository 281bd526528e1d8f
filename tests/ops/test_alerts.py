"""Alert sinks over real loopback sockets: signed webhook with retries, syslog over UDP and TCP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from dlp import __version__
from dlp.alerts import (
    AlertDispatcher,
    SyslogSink,
    WebhookSink,
    alert_payload,
    cef_message,
    rfc5424,
    sinks_from_settings,
)
from dlp.config import load_settings
from dlp.errors import ConfigError
from tests.ops.conftest import Receiver

RAW_CARD = "4111111111111111"
SECRET = b"webhook-shared-secret"

INCIDENT: dict[str, Any] = {
    "id": "01JDQ3Z5X9K2M4N6P8R0S2T4V6",
    "created_at": "2026-11-28T02:00:00+00:00",
    "channel": "smtp",
    "action": "block",
    "status": "open",
    "sender": "alice@example.com",
    "recipients": ["bob@partner.test"],
    "client": "192.0.2.10",
    "rules": [{"id": "pci-card-external", "action": "block", "explanation": "2 card numbers | to=external"}],
    "regulations": ["pci-dss"],
    "findings": [
        {
            "detector": "credit-card",
            "confidence": "high",
            "preview": "4111 **** **** 1111",
            "hash": "hmac-sha256:9f2c",
            "location": "message/body",
            "count": 2,
            "value": RAW_CARD,
        }
    ],
    "content": f"card {RAW_CARD}",
}


def sample(name: str, sink: str) -> float:
    value = REGISTRY.get_sample_value(name, {"sink": sink})
    return value or 0.0


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_payload_keeps_no_raw_value() -> None:
    text = json.dumps(alert_payload(INCIDENT))
    assert RAW_CARD not in text
    payload = alert_payload(INCIDENT)
    assert payload["event"] == "incident"
    assert "content" not in payload["incident"]
    assert payload["incident"]["findings"] == [
        {
            "detector": "credit-card",
            "location": "message/body",
            "confidence": "high",
            "preview": "4111 **** **** 1111",
            "hash": "hmac-sha256:9f2c",
            "count": 2,
        }
    ]


async def test_webhook_signed_and_retried(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    sent, failed = sample("dlp_alerts_sent_total", "webhook"), sample("dlp_alert_failures_total", "webhook")
    sink = WebhookSink(receiver.url, SECRET, timeout=2.0, retries=3, backoff=0.01)
    sink.start()
    assert sink.submit(alert_payload(INCIDENT))
    await wait_for(receiver.arrived.is_set)
    await sink.stop()
    assert len(receiver.requests) == 3
    headers, body = receiver.requests[-1]
    timestamp = headers["X-DLP-Timestamp"]
    expected = hmac.new(SECRET, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-DLP-Signature"] == f"sha256={expected}"
    deliveries = {h["X-DLP-Delivery"] for h, _ in receiver.requests}
    assert len(deliveries) == 1
    assert RAW_CARD.encode() not in body
    assert json.loads(body)["incident"]["id"] == INCIDENT["id"]
    assert sample("dlp_alerts_sent_total", "webhook") == sent + 1
    assert sample("dlp_alert_failures_total", "webhook") == failed


@pytest.mark.parametrize(
    ("statuses", "requests"),
    [([400], 1), ([500, 500, 500], 3), ([429, 502, 504], 3)],
)
async def test_webhook_failure_counted(receiver: Receiver, statuses: list[int], requests: int) -> None:
    receiver.statuses = list(statuses)
    failed = sample("dlp_alert_failures_total", "webhook")
    sink = WebhookSink(receiver.url, SECRET, timeout=2.0, retries=2, backoff=0.01)
    sink.start()
    sink.submit(alert_payload(INCIDENT))
    await wait_for(lambda: sample("dlp_alert_failures_total", "webhook") == failed + 1)
    await sink.stop()
    assert len(receiver.requests) == requests


async def test_webhook_unreachable_counts_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failed = sample("dlp_alert_failures_total", "webhook")
    sink = WebhookSink(f"http://127.0.0.1:{port}/", SECRET, timeout=1.0, retries=1, backoff=0.01)
    sink.start()
    sink.submit(alert_payload(INCIDENT))
    await wait_for(lambda: sample("dlp_alert_failures_total", "webhook") == failed + 1)
    await sink.stop()


async def test_full_queue_drops_and_counts(receiver: Receiver) -> None:
    dropped = sample("dlp_alerts_dropped_total", "webhook")
    sink = WebhookSink(receiver.url, SECRET, queue_size=2, retries=0)
    accepted = [sink.submit(alert_payload(INCIDENT)) for _ in range(5)]
    assert accepted == [True, True, False, False, False]
    assert sample("dlp_alerts_dropped_total", "webhook") == dropped + 3
    sink.start()
    await sink.stop(timeout=5.0)
    assert len(receiver.requests) == 2


SYSLOG_LINE = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+Z) (?P<host>\S+) dlp (?P<pid>\d+) incident "
    r'\[dlp@32473 incident="(?P<id>[^"]+)" action="(?P<action>[a-z]+)"\] (?P<msg>CEF:0\|.*)$'
)


def test_rfc5424_with_cef() -> None:
    line = rfc5424(alert_payload(INCIDENT)["incident"], facility=16, hostname="relay 1").decode()
    match = SYSLOG_LINE.match(line)
    assert match is not None, line
    assert int(match["pri"]) == 16 * 8 + 4
    assert match["host"] == "relay1"
    assert match["id"] == INCIDENT["id"]
    assert RAW_CARD not in line
    header = match["msg"].split("|")
    assert header[:3] == ["CEF:0", "dlp", "dlp"]
    assert header[4:7] == ["pci-card-external", "DLP block: pci-card-external", "8"]
    assert "act=block" in line
    assert "cnt=2" in line
    assert "src=192.0.2.10" in line
    assert "cs2=credit-card cs2Label=detectors" in line
    assert r"msg=2 card numbers | to\=external" in line


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a=b", r"a\=b"), ("back\\slash", r"back\\slash"), ("two\nlines", r"two\nlines")],
)
def test_cef_extension_escaping(raw: str, escaped: str) -> None:
    incident = {"id": "X", "action": "alert", "rules": [{"id": "r", "explanation": raw}]}
    assert f" msg={escaped} cs1=r " in cef_message(incident)


async def test_syslog_udp_datagram() -> None:
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Collector(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sent = sample("dlp_alerts_sent_total", "syslog")
    sink = SyslogSink("127.0.0.1", port, "udp", facility=4)
    sink.start()
    sink.submit(alert_payload(INCIDENT))
    datagram = await asyncio.wait_for(received.get(), 5.0)
    await sink.stop()
    transport.close()
    match = SYSLOG_LINE.match(datagram.decode())
    assert match is not None
    assert int(match["pri"]) == 4 * 8 + 4
    assert RAW_CARD.encode() not in datagram
    assert sample("dlp_alerts_sent_total", "syslog") == sent + 1


async def test_syslog_tcp_octet_counting() -> None:
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length = int((await reader.readuntil(b" "))[:-1])
        frames.put_nowait(await reader.readexactly(length))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = SyslogSink("127.0.0.1", port, "tcp")
    sink.start()
    sink.submit(alert_payload(INCIDENT))
    frame = await asyncio.wait_for(frames.get(), 5.0)
    await sink.stop()
    server.close()
    await server.wait_closed()
    assert SYSLOG_LINE.match(frame.decode()) is not None


async def test_dispatcher_from_settings_and_threads(receiver: Receiver) -> None:
    settings = load_settings(
        None,
        environ={
            "DLP_ALERTS__WEBHOOK_URL": receiver.url,
            "DLP_ALERTS__WEBHOOK_SECRET": SECRET.decode(),
        },
    )
    dispatcher = AlertDispatcher(sinks_from_settings(settings))
    assert [s.name for s in dispatcher.sinks] == ["webhook"]
    dispatcher.start()
    await asyncio.to_thread(dispatcher.on_incident, INCIDENT)
    await wait_for(receiver.arrived.is_set)
    await dispatcher.stop()
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DLP_ALERTS__WEBHOOK_URL": "http://127.0.0.1:9/"}, "alerts.webhook_secret"),
        ({"DLP_ALERTS__WEBHOOK_URL": "ftp://x/", "DLP_ALERTS__WEBHOOK_SECRET": "s"}, "alerts.webhook_url"),
        ({"DLP_ALERTS__SYSLOG_ADDRESS": "localhost"}, "HOST:PORT"),
    ],
)
def test_sink_settings_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sinks_from_settings(load_settings(None, environ=environ))


def test_no_sinks_by_default() -> None:
    assert sinks_from_settings(load_settings(None, environ={})) == []


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """Split a CEF line into its seven header fields and its extension, undoing escapes."""
    fields, current, i = [], "", 0
    while len(fields) < 7:
        if line[i] == "\\":
            current += line[i + 1]
            i += 2
        elif line[i] == "|":
            fields.append(current)
            current, i = "", i + 1
        else:
            current += line[i]
            i += 1
    unescape = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}
    extension = {
        m[1]: re.sub(r"\\(.)", lambda e: unescape[e[1]], m[2])
        for m in re.finditer(r"(\w+)=((?:\\.|[^\\=])*?)(?= \w+=|$)", line[i:])
    }
    return fields, extension


@settings(max_examples=60, deadline=None)
@given(
    explanation=st.text(max_size=80),
    sender=st.text(min_size=1, max_size=40),
    rule=st.text(min_size=1, max_size=30),
)
def test_cef_and_syslog_round_trip_any_text(explanation: str, sender: str, rule: str) -> None:
    incident = {
        "id": "01JDQ3Z5X9K2M4N6P8R0S2T4V6",
        "action": "quarantine",
        "sender": sender,
        "rules": [{"id": rule, "explanation": explanation}],
    }
    line = cef_message(incident)
    assert "\n" not in line and "\r" not in line
    fields, extension = parse_cef(line)
    flat_rule = rule.replace("\r", " ").replace("\n", " ")
    assert fields == ["CEF:0", "dlp", "dlp", __version__, flat_rule, f"DLP quarantine: {flat_rule}", "7"]
    assert extension["msg"] == explanation.replace("\r\n", "\n")
    assert extension["suser"] == sender.replace("\r\n", "\n")
    assert extension["externalId"] == incident["id"]
    datagram = rfc5424(incident, hostname="h")
    assert SYSLOG_LINE.match(datagram.decode()) is not None
