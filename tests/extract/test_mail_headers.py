"""The `headers` part of a message: free-text fields (custom ones too, RFC 2047 decoded
and unfolded), display names, attachment file names; never routing data or addresses."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.extract import extract
from dlp.extract.mail import _display_names
from dlp.model import Item, Limits

SSN = "123-45-6789"


def headers_text(data: bytes) -> str:
    parts = list(extract(Item(data=data, name="mail.eml"), Limits()))
    return "".join(p.text for p in parts if p.location == "message/headers")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"X-Notes: SSN " + SSN.encode() + b"\r\n", f"X-Notes: SSN {SSN}\n"),
        (b"X-Notes: =?utf-8?Q?Kunde_M=C3=BCller_SSN_123-45-6789?=\r\n", f"X-Notes: Kunde Müller SSN {SSN}\n"),
        (b"X-Folded: first half\r\n second half\r\n", "X-Folded: first half second half\n"),
        (b"Thread-Topic: payroll " + SSN.encode() + b"\r\n", f"Thread-Topic: payroll {SSN}\n"),
        (b"Organization: Example Corp\r\nX-Empty:\r\n", "Organization: Example Corp\n"),
        (b"Received: from a ([10.1.2.3]) by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n", ""),
        (b"Message-ID: <123-45-6789@example.com>\r\nReferences: <a@b>\r\n", ""),
        (b"DKIM-Signature: v=1; b=AbC123\r\nARC-Seal: i=1; b=xyz\r\nX-MS-Exchange-Org: 1\r\n", ""),
        (b"X-DLP-Verdict: allow\r\nX-Originating-IP: [10.0.0.1]\r\nX-Mailer: Outlook 16.0.1\r\n", ""),
        (b"Bcc: Secret Person <s@example.com>\r\nResent-To: r@example.com\r\n", ""),
    ],
    ids=[
        "custom",
        "rfc2047",
        "folded",
        "thread-topic",
        "empty-skipped",
        "received",
        "ids",
        "signatures",
        "transport",
        "addresses",
    ],
)
def test_non_routing_headers_are_scanned(raw: bytes, expected: str) -> None:
    data = b"From: Ann <ann@example.com>\r\nTo: bob@example.org\r\n" + raw + b"Subject: hi\r\n\r\nbody\r\n"
    assert headers_text(data) == f"Subject: hi\nFrom: Ann\n{expected}"


def test_attachment_file_names_are_in_the_headers_part() -> None:
    data = (
        b"Subject: files\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--B\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="card 4111 1111 1111 1111.txt"\r\n\r\nnothing here\r\n'
        b"--B\r\nContent-Type: application/octet-stream;\r\n"
        b' name="=?utf-8?B?w7xiZXJzaWNodC50eHQ=?="\r\n\r\nx\r\n'
        b"--B\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=fwd.eml\r\n\r\n"
        b"Subject: inner\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: inline; filename="ssn 123-45-6789.txt"\r\n\r\ninner body\r\n'
        b"--B--\r\n"
    )
    parts = {p.location: p.text for p in extract(Item(data=data, name="mail.eml"), Limits())}
    assert parts["message/headers"] == (
        "Subject: files\n"
        "File-Name: card 4111 1111 1111 1111.txt\nFile-Name: übersicht.txt\nFile-Name: fwd.eml\n"
    )
    assert (
        parts["message/attachment[3]:fwd.eml/headers"] == "Subject: inner\nFile-Name: ssn 123-45-6789.txt\n"
    )
    assert list(parts) == [
        "message",
        "message/headers",
        "message/body[1]",
        "message/attachment[1]:card 4111 1111 1111 1111.txt",
        "message/attachment[2]:übersicht.txt",
        "message/attachment[3]:fwd.eml",
        "message/attachment[3]:fwd.eml/headers",
        "message/attachment[3]:fwd.eml/attachment[1]:ssn 123-45-6789.txt",
    ]


NAME_CHARS = st.sampled_from(list("AZaz09 '-.\t\u00e9\u00fc\u00c0\u0142\"(),;:<>@[]\\_+"))
ADDRESS = st.from_regex(r"[a-z0-9._+-]{1,8}@[a-z0-9.-]{1,8}", fullmatch=True)


@st.composite
def address_fields(draw: st.DrawFn) -> list[str]:
    fields = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.text(NAME_CHARS, max_size=12))
        address = draw(ADDRESS)
        form = draw(st.sampled_from(["{a}", "{n} <{a}>", " {n}<{a}> ", "{n} <{a}>, {a}"]))
        fields.append(form.format(n=name, a=address))
    return fields


@settings(max_examples=100, deadline=None)
@given(address_fields())
def test_display_names_agree_with_getaddresses(values: list[str]) -> None:
    expected = [name for name, _ in email.utils.getaddresses(values) if name]
    assert _display_names(values) == expected
