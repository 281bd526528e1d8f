"""Outlook TNEF (winmail.dat): bodies (plain, compressed RTF) and attachments at their
locations, alone and inside a mail; damage, limits and the pipeline. The streams are
built by the small writer below ([MS-OXTNEF] attribute records with their checksums)."""

from __future__ import annotations

import struct
from email.message import EmailMessage
from pathlib import Path

from dlp.config import load_settings
from dlp.extract import extract
from dlp.model import Item, Limits, Part, ScanContext
from dlp.pipeline import Scanner
from tests.extract.msgfile import compressed_rtf

CARD = "4539 1488 0343 6467"
SSN = "536-22-1234"
TNEF = "application/ms-tnef"
MESSAGE, ATTACHMENT = 1, 2
BODY, TITLE, DATA, REND, MAPI, PROPS, CODEPAGE, SUBJECT = (
    0x0001800C, 0x00018010, 0x0006800F, 0x00069002, 0x00069003, 0x00069005, 0x00069007, 0x00018004,
)  # fmt: skip
PR_BODY_W, PR_RTF, PR_LONG_NAME_A, PR_DATA_OBJ, PR_CODEPAGE = (
    0x1000001F, 0x10090102, 0x3707001E, 0x3701000D, 0x3FFD0003,
)  # fmt: skip
RTF = rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}\f0\fs20 Card 4539 1488 0343 6467\par}"


def attribute(level: int, ident: int, data: bytes) -> bytes:
    """One attribute record: level, id, length, data, checksum (sum of the data bytes)."""
    return struct.pack("<BII", level, ident, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)


def padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def properties(*entries: tuple[int, bytes]) -> bytes:
    """A MAPI property list: variable-size values (strings, binary, objects) with their
    count and size, fixed ones as they are; a named property first, as Outlook writes."""
    named_name = "Keywords".encode("utf-16-le") + b"\0\0"
    out = struct.pack("<I", len(entries) + 1)
    out += struct.pack("<I", 0x8001_0003) + b"\x11" * 16 + struct.pack("<II", 1, len(named_name))
    out += padded(named_name) + struct.pack("<I", 7)
    for tag, value in entries:
        out += struct.pack("<I", tag)
        if tag & 0xFFFF in (0x001E, 0x001F, 0x0102, 0x000D):
            out += struct.pack("<II", 1, len(value)) + padded(value)
        else:
            out += padded(value)
    return out


def tnef(*attributes: bytes) -> bytes:
    return b"\x78\x9f\x3e\x22" + struct.pack("<H", 0x0D21) + b"".join(attributes)


def notes(data: bytes = f"SSN {SSN}".encode()) -> bytes:
    """An attachment as Outlook writes it: rendering, 8.3 title, data, then its MAPI
    properties with the long file name."""
    return (
        attribute(ATTACHMENT, REND, b"\x01\x00" + b"\xff" * 12)
        + attribute(ATTACHMENT, TITLE, b"NOTES~1.TXT\0")
        + attribute(ATTACHMENT, DATA, data)
        + attribute(ATTACHMENT, PROPS, properties((PR_LONG_NAME_A, b"notes.txt\0")))
    )


def winmail(body: bytes = f"Card {CARD}\r\n\0".encode()) -> bytes:
    return tnef(
        attribute(MESSAGE, CODEPAGE, struct.pack("<II", 1252, 0)),
        attribute(MESSAGE, SUBJECT, b"Refund\0"),
        attribute(MESSAGE, BODY, body),
        notes(),
    )


def run(data: bytes, name: str | None = "winmail.dat", limits: Limits | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), limits or Limits()))


def rows(parts: list[Part]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(p.location, p.type, p.text, p.flags) for p in parts]


def expected(base: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [
        (base, TNEF, "", ()),
        (f"{base}/body[1]", "text/plain", f"Card {CARD}\r\n", ()),
        (f"{base}/attachment[1]:notes.txt", "text/plain", f"SSN {SSN}", ()),
    ]


def test_body_and_attachment_at_their_locations_whatever_the_name() -> None:
    for name in ("winmail.dat", "x.bin", None):
        assert rows(run(winmail(), name)) == expected(name or "item")


def test_code_page_unicode_body_and_names_without_a_long_one() -> None:
    body = "Карта 4539 1488 0343 6467".encode("cp1251") + b"\0"
    data = tnef(
        attribute(MESSAGE, CODEPAGE, struct.pack("<II", 1251, 0)),
        attribute(MESSAGE, BODY, body),
        attribute(ATTACHMENT, REND, b"\0" * 14),
        attribute(ATTACHMENT, TITLE, "СЧЁТ.TXT\0".encode("cp1251")),
        attribute(ATTACHMENT, DATA, b"one"),
        attribute(ATTACHMENT, REND, b"\0" * 14),
        attribute(ATTACHMENT, DATA, b"two"),
    )
    assert rows(run(data)) == [
        ("winmail.dat", TNEF, "", ()),
        ("winmail.dat/body[1]", "text/plain", f"Карта {CARD}", ()),
        ("winmail.dat/attachment[1]:СЧЁТ.TXT", "text/plain", "one", ()),
        ("winmail.dat/attachment[2]:unnamed", "text/plain", "two", ()),
    ]
    unicode = tnef(attribute(MESSAGE, MAPI, properties((PR_BODY_W, f"Card {CARD}\0".encode("utf-16-le")))))
    assert rows(run(unicode))[1:] == [("winmail.dat/body[1]", "text/plain", f"Card {CARD}", ())]


def test_compressed_rtf_body_is_read_when_there_is_no_plain_one() -> None:
    rtf_only = tnef(
        attribute(
            MESSAGE, MAPI, properties((PR_CODEPAGE, struct.pack("<I", 1252)), (PR_RTF, compressed_rtf(RTF)))
        ),
        notes(),
    )
    assert rows(run(rtf_only)) == [
        ("winmail.dat", TNEF, "", ()),
        ("winmail.dat/body[1]", "text/rtf", f"Card {CARD}\n", ()),
        ("winmail.dat/attachment[1]:notes.txt", "text/plain", f"SSN {SSN}", ()),
    ]
    both = tnef(
        attribute(MESSAGE, BODY, b"plain"),
        attribute(MESSAGE, MAPI, properties((PR_RTF, compressed_rtf(RTF)))),
    )
    assert [p.location for p in run(both)] == ["winmail.dat", "winmail.dat/body[1]"]
    bad_crc = compressed_rtf(RTF)[:12] + b"\0\0\0\0" + compressed_rtf(RTF)[16:]
    damaged = tnef(attribute(MESSAGE, MAPI, properties((PR_RTF, bad_crc))))
    assert rows(run(damaged))[1:] == [("winmail.dat/body[1]", "text/rtf", f"Card {CARD}\n", ("corrupt",))]


def test_winmail_dat_in_a_mail_and_an_embedded_message() -> None:
    mail = EmailMessage()
    mail["Subject"] = "Refund"
    mail["From"] = "Ann Lee <ann@example.com>"
    mail.set_content("See attached.\n")
    mail.add_attachment(winmail(), maintype="application", subtype="ms-tnef", filename="winmail.dat")
    parts = run(mail.as_bytes(), "mail.eml")
    assert rows(parts)[3:] == expected("message/attachment[1]:winmail.dat")
    inner = b"\x0b\x0d\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46" + winmail()
    outer = tnef(
        attribute(MESSAGE, BODY, b"see the forwarded message"),
        attribute(ATTACHMENT, REND, b"\0" * 14),
        attribute(ATTACHMENT, PROPS, properties((PR_DATA_OBJ, inner))),
    )
    assert rows(run(outer))[2:] == expected("winmail.dat/attachment[1]:unnamed")
    assert rows(run(outer, limits=Limits(max_depth=0)))[2:] == [
        ("winmail.dat/attachment[1]:unnamed", "application/octet-stream", "", ("limit:depth",)),
    ]


def test_damage_stops_reading_with_what_was_read_kept() -> None:
    data = winmail()
    cut = data.index(f"SSN {SSN}".encode()) + 5
    assert rows(run(data[:cut])) == [
        ("winmail.dat", TNEF, "", ("corrupt",)),
        ("winmail.dat/body[1]", "text/plain", f"Card {CARD}\r\n", ()),
        ("winmail.dat/attachment[1]:NOTES~1.TXT", "text/plain", "SSN 5", ("truncated",)),
    ]
    title = data.index(b"NOTES~1.TXT") - 4
    bad_length = data[:title] + struct.pack("<I", 0x7FFFFFFF) + data[title + 4 :]
    assert rows(run(bad_length)) == [
        ("winmail.dat", TNEF, "", ("corrupt",)),
        ("winmail.dat/body[1]", "text/plain", f"Card {CARD}\r\n", ()),
        ("winmail.dat/attachment[1]:unnamed", "application/x-empty", "", ()),
    ]
    assert rows(run(data[:5])) == [("winmail.dat", TNEF, "", ("corrupt",))]
    broken_list = struct.pack("<II", 1, 0x3707_0099) + b"\0" * 8
    broken = tnef(attribute(MESSAGE, BODY, b"ok"), attribute(MESSAGE, MAPI, broken_list))
    assert rows(run(broken)) == [
        ("winmail.dat", TNEF, "", ()),
        ("winmail.dat/body[1]", "text/plain", "ok", ()),
        ("winmail.dat", TNEF, "", ("corrupt",)),
    ]


def test_size_and_file_limits() -> None:
    limits = Limits(max_member_bytes=4096)
    big = tnef(attribute(MESSAGE, BODY, b"hi"), notes(b"SSN " + b"x" * 5000))
    assert rows(run(big, limits=limits))[2:] == [
        ("winmail.dat/attachment[1]:notes.txt", "text/plain", "SSN " + "x" * 4092, ("limit:size",)),
    ]
    large_properties = tnef(
        attribute(MESSAGE, MAPI, properties((PR_RTF, b"\0" * 5000))), attribute(MESSAGE, BODY, b"hi")
    )
    assert rows(run(large_properties, limits=limits)) == [
        ("winmail.dat", TNEF, "", ("limit:size",)),
        ("winmail.dat/body[1]", "text/plain", "hi", ()),
    ]
    capped = run(winmail(), limits=Limits(max_files=1))
    assert [(p.location, p.flags) for p in capped][-1] == ("winmail.dat", ("limit:files",))


def test_tnef_is_scanned_by_the_pipeline(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    result = scanner.scan(Item(data=winmail(), name="winmail.dat"), ScanContext(channel="http"))
    assert [(f.detector, f.location, f.start, f.end) for f in result.findings] == [
        ("credit-card", "winmail.dat/body[1]", 5, 24),
        ("us-ssn", "winmail.dat/attachment[1]:notes.txt", 4, 15),
    ]
    assert [p.location for p in result.parts] == [row[0] for row in expected("winmail.dat")]
    assert result.flags == ()
