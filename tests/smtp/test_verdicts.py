"""Scanning verdicts through the relay, with the real worker pool, the shipped policy
packs and the real SQLite store: allowed mail arrives byte-identical apart from our
headers; alerted mail arrives with its incident; quarantined mail gets 250, never
arrives and is in the store; blocked mail gets 550 and never arrives."""

from __future__ import annotations

import asyncio
import random
import re
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from prometheus_client import REGISTRY

from dlp.config import Settings
from dlp.smtp import replies
from dlp.store import Store
from dlp.workers import ScanPool
from tests.smtp.client import Ledger, make_message, send
from tests.smtp.conftest import INTERNAL_DOMAINS, RelayFactory
from tests.smtp.sink import Sink

CARD = "4539 1488 0343 6467"
CARDS = ["4539148803436467", "5425233430109903", "4916338506082832", "4024007198964305", "5191914942157165"]
PCI_BLOCK = "Message blocked: it contains payment card numbers (PCI DSS). Contact your security team."
INCIDENT = re.compile(r"\(incident ([0-9A-Z]{26})\)$")


def _hop(sink: Sink) -> str:
    return f"smtp://127.0.0.1:{sink.port}"


async def test_allowed_mail_arrives_with_verdict_header(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    original = make_message(
        "v-allow", body="Lunch on Friday at noon?\n", attachment=b"Agenda: budget review, hiring plan.\n" * 8
    )
    outcome = await asyncio.to_thread(
        send, relay.port, b"X-DLP-Verdict: allow\r\n" + original, xforward="ADDR=192.0.2.9 NAME=mx.example"
    )
    assert f"{outcome.code} {outcome.text}" == replies.DELIVERED
    assert [r.data for r in sink.received] == [b"X-DLP-Verdict: allow\r\n" + original]
    assert store.list_incidents().total == 0


async def test_alert_delivers_with_incident_header(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    original = make_message("v-alert", body=f"Card for the hotel booking: {CARD}\n")
    outcome = await asyncio.to_thread(send, relay.port, original, recipients=["carol@corp.example"])
    assert f"{outcome.code} {outcome.text}" == replies.DELIVERED
    [got] = sink.received
    [incident] = store.list_incidents().items
    assert incident["action"] == "alert"
    assert got.data == f"X-DLP-Verdict: alert\r\nX-DLP-Incident: {incident['id']}\r\n".encode() + original
    assert CARD.replace(" ", "") not in str(incident)


async def test_quarantined_mail_is_held_not_delivered(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    original = make_message("v-quarantine", body=f"My card number is {CARD}, expiry 12/29.\n")
    outcome = await asyncio.to_thread(
        send,
        relay.port,
        original,
        recipients=["carol@corp.example", "bob@partner.example"],
        xforward="ADDR=192.0.2.9",
    )
    assert f"{outcome.code} {outcome.text}" == replies.QUARANTINED
    assert sink.received == []
    [held] = store.list_quarantine().items
    assert store.read_quarantine_bytes(held["id"]) == original
    assert (held["channel"], held["sender"], held["client"]) == ("smtp", "alice@corp.example", "192.0.2.9")
    assert held["recipients"] == ["carol@corp.example", "bob@partner.example"]
    [incident] = store.list_incidents().items
    assert incident["quarantine_id"] == held["id"]


async def test_blocked_mail_gets_550_with_incident(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    original = make_message("v-block", body="Cards: " + ", ".join(CARDS) + "\n")
    outcome = await asyncio.to_thread(send, relay.port, original)
    reply = f"{outcome.code} {outcome.text}"
    match = INCIDENT.search(reply)
    assert match is not None, reply
    assert reply == replies.blocked(PCI_BLOCK, match.group(1))
    assert sink.received == []
    incident = store.get_incident(match.group(1))
    assert (incident["action"], incident["quarantine_id"]) == ("block", None)
    assert store.list_quarantine().total == 0


async def test_mixed_batch_ledger(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    bodies = {
        "clean": "See you tomorrow.\n",
        "card": f"Card {CARD} exp 12/29\n",
        "cards": "Cards: " + ", ".join(CARDS),
    }
    ledger = Ledger()
    for n in range(6):
        kind = list(bodies)[n % 3]
        marker = f"batch-{kind}-{n}"
        ledger.record(
            marker, await asyncio.to_thread(send, relay.port, make_message(marker, body=bodies[kind]))
        )
    held = [store.read_quarantine_bytes(item["id"]) for item in store.list_quarantine().items]
    counts = ledger.check([r.data for r in sink.received], held)
    print(f"ledger verdicts: {counts}")
    assert counts == {"accepted": 4, "delivered": 2, "quarantined": 2, "4xx": 0, "5xx": 2, "dropped": 0}


async def test_scan_timeout_is_451(make_relay: RelayFactory, sink: Sink, tmp_path: Path) -> None:
    pool = ScanPool(Settings(state_dir=tmp_path / "pool", internal_domains=INTERNAL_DOMAINS), workers=1)
    try:
        relay = await make_relay(_hop(sink), pool, scan=True, message_timeout_seconds=0.001)
        errors = REGISTRY.get_sample_value("dlp_scan_errors_total", {"channel": "smtp"}) or 0.0
        outcome = await asyncio.to_thread(send, relay.port, make_message("v-timeout"))
        assert f"{outcome.code} {outcome.text}" == replies.SCAN_FAILED
        assert sink.received == []
        assert REGISTRY.get_sample_value("dlp_scan_errors_total", {"channel": "smtp"}) == errors + 1
    finally:
        pool.close()


async def test_store_failure_is_451_not_250(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True)
    store.close()
    ledger = Ledger()
    for marker, body in (
        ("v-store-q", f"My card number is {CARD}.\n"),
        ("v-store-b", "Cards: " + ", ".join(CARDS)),
    ):
        outcome = await asyncio.to_thread(send, relay.port, make_message(marker, body=body))
        assert f"{outcome.code} {outcome.text}" == replies.INTERNAL_ERROR
        ledger.record(marker, outcome)
    assert ledger.check([r.data for r in sink.received])["4xx"] == 2


async def test_headers_off_still_strips_forged_ones(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool
) -> None:
    relay = await make_relay(_hop(sink), scan_pool, scan=True, add_headers=False)
    original = make_message("v-noheaders")
    outcome = await asyncio.to_thread(send, relay.port, b"X-DLP-Incident: forged\r\n" + original)
    assert f"{outcome.code} {outcome.text}" == replies.DELIVERED
    assert [r.data for r in sink.received] == [original]


def _slow_message() -> bytes:
    """About 6 MB of text attachments dense with 10-digit numbers next to 'tel': over ten
    seconds of phone-number validation here, in 60 parts of a fraction of a second each
    (the scan checks its clock between parts)."""
    numbers = random.Random(7)
    message = EmailMessage()
    message["From"] = "Alice <alice@corp.example>"
    message["To"] = "bob@partner.example"
    message["Subject"] = "call list"
    message.set_content("The numbers we have.\n")
    for n in range(60):
        lines = "".join(f"tel {numbers.randrange(10**9, 10**10)} ref {n}\n" for _ in range(5000))
        message.add_attachment(lines, filename=f"calls-{n}.txt")
    return message.as_bytes(policy=SMTP)


async def test_scan_past_its_share_of_the_deadline_is_decided_not_451(
    make_relay: RelayFactory, sink: Sink, scan_pool: ScanPool, store: Store
) -> None:
    # A 6-s message deadline leaves the scan 3 s: it ends flagged limit:time and the shipped
    # default pack quarantines unscanned outbound mail, instead of a 451 on every retry.
    relay = await make_relay(_hop(sink), scan_pool, scan=True, message_timeout_seconds=6.0)
    original = _slow_message()
    outcome = await asyncio.to_thread(send, relay.port, original)
    assert f"{outcome.code} {outcome.text}" == replies.QUARANTINED
    assert sink.received == []
    [held] = store.list_quarantine().items
    assert store.read_quarantine_bytes(held["id"]) == original
    assert held["flags"] == ["limit:time"]
    assert [rule["id"] for rule in held["rules"] if rule["mode"] == "enforce"] == [
        "default-unscannable-outbound"
    ]
