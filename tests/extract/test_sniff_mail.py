"""A message with no `.eml` name is still read as mail when its header block starts with
an mbox `From ` line or runs past forty lines (Exchange's `X-MS-*` fields), so its
base64 body is decoded rather than scanned as plain text."""

from __future__ import annotations

import base64

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits
from tests.extract.samples import CARD

BODY = base64.encodebytes(f"Card {CARD}\n".encode())
HEADERS = (
    b"From: Bob Smith <bob@example.com>\n"
    b"To: eve@example.org\n"
    b"Subject: numbers\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: base64\n\n"
)
EXCHANGE = b"".join(b"X-MS-Exchange-Organization-Field%d: value %d\n" % (n, n) for n in range(45))


@pytest.mark.parametrize(
    "data",
    [
        b"From bob@example.com Mon Jan  1 00:00:00 2024\n" + HEADERS + BODY,
        EXCHANGE + HEADERS + BODY,
        EXCHANGE.replace(b"\n", b"\r\n") + HEADERS.replace(b"\n", b"\r\n") + BODY,
    ],
    ids=["mbox-from-line", "exchange-headers", "exchange-headers-crlf"],
)
def test_unnamed_message_is_read_as_mail(data: bytes) -> None:
    parts = list(extract(Item(data=data, name=None), Limits()))
    bodies = [(p.location, p.type, p.text, p.flags) for p in parts if p.location == "message/body[1]"]
    assert bodies == [("message/body[1]", "text/plain", f"Card {CARD}\n", ())]


def test_text_with_a_from_line_and_no_headers_stays_text() -> None:
    data = b"From the desk of Bob: call me\nabout the numbers.\n\nThanks\n"
    parts = list(extract(Item(data=data, name=None), Limits()))
    assert [(p.location, p.type, p.text) for p in parts] == [("item", "text/plain", data.decode())]
