"""OpenPGP: an encrypted message cannot be read, so it is flagged `encrypted` (never
passed as clean): the PGP/MIME encrypted part, an armoured `.asc` file, and a plain
body holding inline armour (whose other text is still scanned). A clear-signed body is
plain text and is read as such."""

from __future__ import annotations

from dlp.extract import extract
from dlp.model import Item, Limits

HEADERS = b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: q3\r\n"
ARMOUR = (
    b"-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA5pH1Vw0Yh2eAQf/Ug==\r\n=Zx2c\r\n-----END PGP MESSAGE-----\r\n"
)


def _parts(data: bytes) -> list[tuple[str, str, tuple[str, ...], str]]:
    item = Item(data=data, name=None, declared_type="message/rfc822")
    return [(p.location, p.type, p.flags, p.text) for p in extract(item, Limits())]


def test_pgp_mime_encrypted_part_is_encrypted() -> None:
    data = (
        HEADERS
        + b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="P"\r\n\r\n'
        + b"--P\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        + b"--P\r\nContent-Type: application/octet-stream; name=encrypted.asc\r\n\r\n"
        + ARMOUR
        + b"--P--\r\n"
    )
    assert _parts(data)[-2:] == [
        ("message/attachment[1]:unnamed", "text/plain", (), "Version: 1"),
        ("message/attachment[2]:encrypted.asc", "application/pgp-encrypted", ("encrypted",), ""),
    ]


def test_inline_armour_in_a_body_flags_the_body_and_keeps_its_text() -> None:
    data = HEADERS + b"Content-Type: text/plain\r\n\r\nSSN 536-22-1234 below\r\n" + ARMOUR
    body = _parts(data)[-1]
    assert body[:3] == ("message/body[1]", "text/plain", ("encrypted",))
    assert body[3].startswith("SSN 536-22-1234 below\r\n-----BEGIN PGP MESSAGE-----")


def test_clear_signed_body_is_plain_text() -> None:
    signed = (
        b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nSSN 536-22-1234\r\n"
        b"-----BEGIN PGP SIGNATURE-----\r\n\r\niHUEARYIAB0=\r\n-----END PGP SIGNATURE-----\r\n"
    )
    assert _parts(HEADERS + b"Content-Type: text/plain\r\n\r\n" + signed)[-1][:3] == (
        "message/body[1]",
        "text/plain",
        (),
    )
