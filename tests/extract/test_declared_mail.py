"""An item declared `message/rfc822` (what the relay hands over), or text named `.eml`
(an upload, a member of an archive), is read as mail even when its few headers do not
look like mail to the sniffer: base64 and quoted-printable bodies are decoded, not
scanned as their encoded text. Other declared types are not trusted: the content
decides."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits

CARD = "4929 1804 3277 1533"
BASE64_BODY = (
    b"Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode(f"card {CARD}".encode())
    + b"\r\n"
)
QP_HTML_BODY = (
    b"Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"<html><body>card 4929 18=\r\n04 3277 1533</body></html>\r\n"
)


MAIL_PARTS = [("message", "message/rfc822", ""), ("message/headers", "text/plain", "Subject: x")]


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        (BASE64_BODY, "message/rfc822", [*MAIL_PARTS, ("message/body[1]", "text/plain", f"card {CARD}")]),
        (
            QP_HTML_BODY,
            "message/rfc822",
            [
                MAIL_PARTS[0],
                ("message/headers", "text/plain", ""),
                ("message/body[1]", "text/html", f"card {CARD}"),
            ],
        ),
        (BASE64_BODY, None, [("item", "text/plain", BASE64_BODY.decode().strip())]),
        (BASE64_BODY, "text/csv", [("item", "text/plain", BASE64_BODY.decode().strip())]),
        (b"PK\x05\x06" + b"\x00" * 18, "message/rfc822", [("item", "application/zip", "")]),
    ],
    ids=[
        "base64-declared-mail",
        "qp-html-declared-mail",
        "base64-undeclared",
        "declared-csv",
        "zip-declared-mail",
    ],
)
def test_declared_mail(data: bytes, declared: str | None, expected: list[tuple[str, str, str]]) -> None:
    parts = list(extract(Item(data=data, declared_type=declared), Limits()))
    assert [(p.location, p.type, p.text.strip()) for p in parts] == expected


def test_text_named_eml_is_mail_even_inside_an_archive() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("fwd.EML", BASE64_BODY)
    parts = list(extract(Item(data=archive.getvalue(), name="mail.zip"), Limits()))
    assert [(p.location, p.type, p.text.strip()) for p in parts] == [
        ("mail.zip", "application/zip", ""),
        ("mail.zip/fwd.EML", "message/rfc822", ""),
        ("mail.zip/fwd.EML/headers", "text/plain", "Subject: x"),
        ("mail.zip/fwd.EML/body[1]", "text/plain", f"card {CARD}"),
    ]
