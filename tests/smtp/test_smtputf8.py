"""SMTPUTF8 mail and a next hop without the extension (RFC 6531): the relay answers
554 5.6.7 and delivers nothing; a quarantine release that needs SMTPUTF8 sends it, and
fails with 5.6.7 when the next hop lacks it; what needs SMTPUTF8."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dlp.api.release import release_item
from dlp.model import ScanContext
from dlp.smtp import replies
from dlp.smtp.nexthop import needs_smtputf8
from dlp.store import Store
from tests.smtp.client import make_message, send
from tests.smtp.conftest import RelayFactory, relay_settings
from tests.smtp.sink import start_sink
from tests.store.factories import card_result

SENDER = "\u00e9l\u00e8ve@corp.example"


@pytest.mark.parametrize(
    ("utf8", "expected", "delivered"),
    [(False, replies.SMTPUTF8_UNSUPPORTED, 0), (True, replies.DELIVERED, 1)],
)
async def test_relay_answers_5_6_7_when_the_next_hop_lacks_smtputf8(
    make_relay: RelayFactory, utf8: bool, expected: str, delivered: int
) -> None:
    sink = await start_sink(utf8=utf8)
    relay = await make_relay(f"smtp://127.0.0.1:{sink.port}")
    outcome = await asyncio.to_thread(
        send, relay.port, make_message("u1"), sender=SENDER, mail_options=["SMTPUTF8"]
    )
    await sink.close()
    assert f"{outcome.code} {outcome.text}" == expected
    assert len(sink.received) == delivered


@pytest.mark.parametrize(
    ("utf8", "ok", "outcome", "mail_options"),
    [
        (False, False, "permanent delivery failure: 554 5.6.7 next hop does not support SMTPUTF8", None),
        (True, True, "delivered to smtp://127.0.0.1:{port} for 1 recipient(s)", ("SMTPUTF8",)),
    ],
)
async def test_release_of_smtputf8_mail(
    tmp_path: Path, store: Store, utf8: bool, ok: bool, outcome: str, mail_options: tuple[str, ...] | None
) -> None:
    sink = await start_sink(utf8=utf8)
    settings = relay_settings(tmp_path, f"smtp://127.0.0.1:{sink.port}")
    context = ScanContext(channel="smtp", sender=SENDER, recipients=("bob@partner.example",))
    item_id = store.quarantine(make_message("u2"), card_result(), context)
    result = await release_item(store, settings, item_id, "reviewer")
    await sink.close()
    assert (result.ok, result.outcome) == (ok, outcome.format(port=sink.port))
    lines = [r.mail_options for r in sink.received]
    sizes = [len(r.data) for r in sink.received]
    assert lines == [(f"FROM:<{SENDER}> SIZE={size} {' '.join(mail_options or ())}",) for size in sizes]
    assert len(lines) == (mail_options is not None)


@pytest.mark.parametrize(
    ("sender", "recipients", "data", "expected"),
    [
        ("a@x.org", ["b@y.org"], b"Subject: plain\r\n\r\ncaf\xc3\xa9 body\r\n", False),
        (SENDER, ["b@y.org"], b"Subject: plain\r\n\r\nbody\r\n", True),
        ("a@x.org", ["b@y.org", "\u00fc@y.org"], b"Subject: plain\r\n\r\nbody\r\n", True),
        ("a@x.org", ["b@y.org"], b"Subject: caf\xc3\xa9\r\n\r\nbody\r\n", True),
        ("a@x.org", ["b@y.org"], b"Subject: caf\xc3\xa9", True),
        ("a@x.org", ["b@y.org"], b"Subject: caf\xe9 (latin-1)\r\n\r\nbody\r\n", False),
        ("a@x.org", ["b@y.org"], b"Subject: plain\n\ncaf\xc3\xa9\n", False),
    ],
)
def test_needs_smtputf8(sender: str, recipients: list[str], data: bytes, expected: bool) -> None:
    assert needs_smtputf8(sender, recipients, data) is expected
