"""MIME email: headers, bodies and attachments at their locations, every encoding decoded."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits, Part
from tests.extract import samples
from tests.extract.samples import CARD


def run(data: bytes) -> list[Part]:
    return list(extract(Item(data=data, name="mail.eml"), Limits()))


def texts(parts: list[Part]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in parts:
        out[part.location] = out.get(part.location, "") + part.text
    return out


def test_message_parts_and_locations() -> None:
    data = samples.email_bytes({"customers.zip": samples.zip_bytes({"export.csv": samples.csv_bytes()})})
    parts = run(data)
    assert [(p.location, p.type, p.flags) for p in parts] == [
        ("message", "message/rfc822", ()),
        ("message/headers", "text/plain", ()),
        ("message/body[1]", "text/plain", ()),
        ("message/body[2]", "text/html", ()),
        ("message/attachment[1]:customers.zip", "application/zip", ()),
        ("message/attachment[1]:customers.zip/export.csv", "text/csv", ()),
    ]
    found = texts(parts)
    headers = "Subject: Quarterly export\nFrom: Bob Smith\nFile-Name: customers.zip\n"
    assert found["message/headers"] == headers
    assert found["message/body[1]"] == f"Card {CARD}\n"
    assert found["message/body[2]"] == f"\nCard {CARD}\n\n\n"
    assert found["message/attachment[1]:customers.zip/export.csv"] == f"name,card\nBob,{CARD}\n"
    assert parts[5].name == "export.csv"


RAW_HEADERS = (
    b"From: =?utf-8?B?SsO8cmdlbiBNw7xsbGVy?= <j@example.com>\r\n"
    b"To: =?iso-8859-1?Q?Fran=E7oise?= <f@example.org>, plain@example.org\r\n"
    b"Subject: =?utf-8?Q?Karte_4111_1111_1111_1111_f=C3=BCr_Sie?=\r\n"
    b"MIME-Version: 1.0\r\n"
)


@pytest.mark.parametrize(
    ("body", "location", "expected"),
    [
        (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"Karte 4111 1111 =\r\n1111 1111 f=C3=BCr Sie\r\n",
            "message/body[1]",
            f"Karte {CARD} für Sie\r\n",
        ),
        (
            b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            b"S2FydGUgNDExMSAxMTExIDExMTEgMTExMSBm/HIgU2ll\r\n",
            "message/body[1]",
            f"Karte {CARD} für Sie",
        ),
        (
            b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
            b"Karte 4111 1111 1111 1111 f\xc3\xbcr Sie\r\n",
            "message/body[1]",
            f"Karte {CARD} für Sie\r\n",
        ),
        (
            b"Content-Type: text/csv\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20export.csv\r\n\r\n"
            b"bmFtZSxjYXJkCkJvYiw0MTExIDExMTEgMTExMSAxMTExCg==\r\n",
            "message/attachment[1]:\u20ac export.csv",
            f"name,card\nBob,{CARD}\n",
        ),
        (
            b'Content-Type: application/octet-stream; name="=?utf-8?B?w7xiZXJzaWNodC50eHQ=?="\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\nS2FydGUgNDExMSAxMTExIDExMTEgMTExMQ==\r\n",
            "message/attachment[1]:\u00fcbersicht.txt",
            f"Karte {CARD}",
        ),
    ],
)
def test_encodings_are_decoded(body: bytes, location: str, expected: str) -> None:
    found = texts(run(RAW_HEADERS + body))
    names = f"File-Name: {location.split(':', 1)[1]}\n" if "attachment" in location else ""
    assert found["message/headers"] == (
        f"Subject: Karte {CARD} für Sie\nFrom: Jürgen Müller\nTo: Françoise\n{names}"
    )
    assert found[location] == expected


def test_nested_message_parts_sit_under_the_attachment() -> None:
    inner = EmailMessage()
    inner["Subject"] = "Original"
    inner.set_content(f"Card {CARD}\n")
    outer = EmailMessage()
    outer["Subject"] = "Fwd: Original"
    outer.set_content("see below\n")
    outer.add_attachment(inner, filename="fwd.eml")
    parts = run(outer.as_bytes())
    assert [(p.location, p.type) for p in parts] == [
        ("message", "message/rfc822"),
        ("message/headers", "text/plain"),
        ("message/body[1]", "text/plain"),
        ("message/attachment[1]:fwd.eml", "message/rfc822"),
        ("message/attachment[1]:fwd.eml/headers", "text/plain"),
        ("message/attachment[1]:fwd.eml/body[1]", "text/plain"),
    ]
    assert parts[5].text == f"Card {CARD}\n"
    assert parts[4].text == "Subject: Original\n"


def test_undecodable_base64_attachment_is_corrupt() -> None:
    data = (
        b"Subject: x\r\nFrom: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=r.pdf\r\n\r\nQUJDR\r\n--b--\r\n"
    )
    flags = {p.location: p.flags for p in run(data)}
    assert flags["message/attachment[1]:r.pdf"] == ("corrupt",)
    assert flags["message/body[1]"] == ()


def test_nested_message_depth_is_limited() -> None:
    message = EmailMessage()
    message.set_content(f"Card {CARD}\n")
    for level in range(5):
        outer = EmailMessage()
        outer["Subject"] = f"level {level}"
        outer.set_content("wrapper\n")
        outer.add_attachment(message, filename="m.eml")
        message = outer
    parts = list(extract(Item(data=message.as_bytes()), Limits(max_depth=3)))
    deepest = "message" + "/attachment[1]:m.eml" * 4
    assert {p.location: p.flags for p in parts}[deepest] == ("limit:depth",)
    assert all(CARD not in p.text for p in parts)
