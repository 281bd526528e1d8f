"""Files uuencoded in a plain-text mail body are decoded and read at `<body>/NAME`."""

from __future__ import annotations

import binascii
from pathlib import Path

from dlp.config import load_settings
from dlp.extract import extract
from dlp.model import Item, Limits, Part, ScanContext
from dlp.pipeline import Scanner

PAYLOAD = b"name,ssn,card\nAnn Lee,536-22-1234,4539 1488 0343 6467\n"
ENCODED = b"".join(binascii.b2a_uu(PAYLOAD[i : i + 45]) for i in range(0, len(PAYLOAD), 45))


def _mail(block: bytes) -> bytes:
    body = b"Hi,\nsee the file below.\n\n" + block + b"\nBye\n"
    head = b"From: a@corp.example\r\nTo: b@partner.example\r\nSubject: export\r\n\r\n"
    return head + body.replace(b"\n", b"\r\n")


def _parts(data: bytes) -> list[Part]:
    return list(extract(Item(data=data, name=None, declared_type="message/rfc822"), Limits()))


def test_uuencoded_file_is_read() -> None:
    parts = _parts(_mail(b"begin 644 export.csv\n" + ENCODED + b"`\nend\n"))
    [member] = [p for p in parts if p.location == "message/body[1]/export.csv"]
    assert (member.type, member.text, member.flags, member.name) == (
        "text/csv",
        PAYLOAD.decode(),
        (),
        "export.csv",
    )


def test_findings_in_a_uuencoded_file(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    data = _mail(b"begin 644 export.csv\n" + ENCODED + b"`\nend\n")
    result = scanner.scan(Item(data=data, name=None, declared_type="message/rfc822"), ScanContext())
    found = {(f.detector, f.location) for f in result.findings if f.detector in ("credit-card", "us-ssn")}
    assert found == {("credit-card", "message/body[1]/export.csv"), ("us-ssn", "message/body[1]/export.csv")}


def test_block_without_end_is_truncated() -> None:
    parts = _parts(_mail(b"begin 600 export.csv\n" + ENCODED))
    [member] = [p for p in parts if p.location == "message/body[1]/export.csv"]
    assert member.text == PAYLOAD.decode()
    assert member.flags == ("truncated",)


def test_undecodable_block_is_corrupt() -> None:
    first, rest = ENCODED.split(b"\n", 1)
    parts = _parts(_mail(b"begin 644 export.csv\n" + first + b"\n\x7f\x7f\x7f!!\n" + rest + b"end\n"))
    [member] = [p for p in parts if p.location == "message/body[1]/export.csv"]
    assert member.flags == ("corrupt",)
    assert member.text == PAYLOAD[:45].decode()


def test_plain_body_mentioning_begin_has_no_member() -> None:
    parts = _parts(_mail(b"We begin 644 tests tomorrow, then end.\n"))
    assert [p.location for p in parts] == ["message", "message/headers", "message/body[1]"]
