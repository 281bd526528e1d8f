"""S/MIME and CMS: signed content is read (detached, opaque DER, and the BER
indefinite-length form Outlook sends), a detached signature is an empty part without
flags (not an unreadable attachment that holds every signed mail), enveloped data is
`encrypted`. The messages are signed at test time with `cryptography`."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from dlp.extract import extract
from dlp.extract.sniff import Kind, sniff
from dlp.model import Item, Limits

HEADERS = b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: q3\r\nMIME-Version: 1.0\r\n"
CONTENT = b"Content-Type: text/plain\r\n\r\ncard 4539 1488 0343 6467\r\n"
TEXT = "card 4539 1488 0343 6467\r\n"


@pytest.fixture(scope="module")
def signer() -> pkcs7.PKCS7SignatureBuilder:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ann")])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return pkcs7.PKCS7SignatureBuilder().set_data(CONTENT).add_signer(cert, key, hashes.SHA256())


def _parts(data: bytes) -> list[tuple[str, str, tuple[str, ...], str]]:
    item = Item(data=data, name=None, declared_type="message/rfc822")
    return [(p.location, p.type, p.flags, p.text) for p in extract(item, Limits())]


def _opaque(der: bytes) -> bytes:
    return (
        HEADERS
        + b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
        + b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=smime.p7m\r\n\r\n"
        + base64.encodebytes(der).replace(b"\n", b"\r\n")
    )


OPAQUE_PARTS = [
    ("message", "message/rfc822", (), ""),
    ("message/headers", "text/plain", (), "Subject: q3\nFrom: Ann\nFile-Name: smime.p7m\n"),
    ("message/attachment[1]:smime.p7m", "message/rfc822", (), ""),
    ("message/attachment[1]:smime.p7m/headers", "text/plain", (), ""),
    ("message/attachment[1]:smime.p7m/body[1]", "text/plain", (), TEXT),
]


def test_detached_signature_is_an_empty_part_without_flags(signer: pkcs7.PKCS7SignatureBuilder) -> None:
    signed = signer.sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    assert _parts(HEADERS + signed) == [
        ("message", "message/rfc822", (), ""),
        ("message/headers", "text/plain", (), "Subject: q3\nFrom: Ann\nFile-Name: smime.p7s\n"),
        ("message/body[1]", "text/plain", (), TEXT),
        ("message/attachment[1]:smime.p7s", "application/pkcs7-signature", (), ""),
    ]


def test_opaque_signed_data_content_is_read(signer: pkcs7.PKCS7SignatureBuilder) -> None:
    der = signer.sign(serialization.Encoding.DER, [])
    assert sniff(der) == (Kind.CMS, "application/pkcs7-mime")
    assert _parts(_opaque(der)) == OPAQUE_PARTS


def test_ber_indefinite_lengths_and_chunked_content_are_read() -> None:
    """The streaming form (Outlook, `openssl cms -stream`): indefinite lengths, and the
    content as a constructed OCTET STRING of two chunks."""

    def tlv(tag: int, value: bytes) -> bytes:
        return bytes([tag, 0x80]) + value + b"\x00\x00"

    def der(tag: int, value: bytes) -> bytes:
        return bytes([tag, len(value)]) + value

    data_oid = der(0x06, bytes.fromhex("2a864886f70d010701"))
    chunks = der(0x04, CONTENT[:20]) + der(0x04, CONTENT[20:])
    encap = tlv(0x30, data_oid + tlv(0xA0, tlv(0x24, chunks)))
    signed_data = tlv(0x30, der(0x02, b"\x01") + der(0x31, b"") + encap + der(0x31, b""))
    content_info = tlv(0x30, der(0x06, bytes.fromhex("2a864886f70d010702")) + tlv(0xA0, signed_data))
    assert _parts(_opaque(content_info)) == OPAQUE_PARTS


def test_enveloped_data_is_encrypted() -> None:
    """Only the content type matters: the recipients and the encrypted content are not read."""
    enveloped = bytes.fromhex("308006092a864886f70d010703a0033001000000")
    data = (
        HEADERS
        + b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(enveloped).replace(b"\n", b"\r\n")
    )
    last = ("message/attachment[1]:smime.p7m", "application/pkcs7-mime", ("encrypted",), "")
    assert _parts(data)[-1] == last


def test_signed_file_that_is_not_mime_is_read_under_its_name() -> None:
    """A `.p7m` file (a signed PDF or text, as qualified signatures send them) holding
    plain data: its content is a file named without `.p7m`."""
    content = b"ssn 536-22-1234\n"
    data_oid = bytes.fromhex("06092a864886f70d010701")
    value = bytes([0x04, len(content)]) + content
    info = bytes([0x30, len(data_oid) + 2 + len(value)]) + data_oid + bytes([0xA0, len(value)]) + value
    item = Item(data=info, name="notes.txt.p7m")
    assert [(p.location, p.type, p.flags, p.text) for p in extract(item, Limits())] == [
        ("notes.txt.p7m", "application/pkcs7-mime", (), ""),
        ("notes.txt.p7m/notes.txt", "text/plain", (), "ssn 536-22-1234\n"),
    ]


def test_damaged_cms_is_corrupt() -> None:
    item = Item(data=bytes.fromhex("308006092a864886f70d010702a0ff"), name="x.p7m")
    assert [(p.location, p.flags) for p in extract(item, Limits())] == [("x.p7m", ("corrupt",))]
