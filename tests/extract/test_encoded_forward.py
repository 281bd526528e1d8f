"""A forwarded message attached as `message/rfc822` with base64 or quoted-printable
transfer encoding (not allowed by RFC 2046, but some clients and gateways send it):
its headers, body and own attachments are read, not its encoded text."""

from __future__ import annotations

import base64
import quopri

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits

FORWARDED = (
    b'Subject: orig\r\nContent-Type: multipart/mixed; boundary="F2"\r\n\r\n'
    b"--F2\r\nContent-Type: text/plain\r\n\r\nsee list\r\n"
    b"--F2\r\nContent-Type: text/plain; name=list.txt\r\n"
    b"Content-Disposition: attachment; filename=list.txt\r\n\r\n"
    b"card 4539 1488 0343 6467\r\n--F2--\r\n"
)


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        (b"base64", base64.encodebytes(FORWARDED)),
        (b"quoted-printable", quopri.encodestring(FORWARDED.replace(b"\r\n", b"\n"))),
    ],
)
def test_encoded_forwarded_message_is_read(encoding: bytes, encoded: bytes) -> None:
    data = (
        b'From: Ann <ann@example.com>\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary="F1"\r\n\r\n'
        b"--F1\r\nContent-Type: text/plain\r\n\r\nFYI\r\n"
        b"--F1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: " + encoding + b"\r\n"
        b'Content-Disposition: attachment; filename="orig.eml"\r\n\r\n' + encoded + b"\r\n--F1--\r\n"
    )
    item = Item(data=data, name=None, declared_type="message/rfc822")
    assert [(p.location, p.flags, p.text.replace("\r\n", "\n")) for p in extract(item, Limits())] == [
        ("message", (), ""),
        ("message/headers", (), "Subject: fwd\nFrom: Ann\nFile-Name: orig.eml\n"),
        ("message/body[1]", (), "FYI"),
        ("message/attachment[1]:orig.eml", (), ""),
        ("message/attachment[1]:orig.eml/headers", (), "Subject: orig\nFile-Name: list.txt\n"),
        ("message/attachment[1]:orig.eml/body[1]", (), "see list"),
        ("message/attachment[1]:orig.eml/attachment[1]:list.txt", (), "card 4539 1488 0343 6467"),
    ]
