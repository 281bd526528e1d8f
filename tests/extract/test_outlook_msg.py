"""Outlook items (.msg): headers, plain, HTML and compressed RTF bodies, attachments and
embedded messages at their locations, alone, attached to MIME mail and inside a ZIP;
limits and damage become flags. The files are built by `tests.extract.msgfile` (no Python library
writes .msg) and read by olefile like any Outlook file."""

from __future__ import annotations

import random
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest

from dlp.config import load_settings
from dlp.extract import extract, lzfu
from dlp.model import Item, Limits, Part, ScanContext
from dlp.pipeline import Scanner
from tests.extract import samples
from tests.extract.msgfile import Tree, compound_file, compressed_rtf, outlook_message

CARD = "4539 1488 0343 6467"
SSN = "536-22-1234"
MSG = "application/vnd.ms-outlook"
HEADERS = "Subject: Refund for order 1182\nFrom: Ann Lee\nTo: Bob Stone, Carol Diaz\nFile-Name: notes.txt\n"


def message(**extra: object) -> Tree:
    return outlook_message(
        "Refund for order 1182",
        f"Please refund card {CARD}.\r\n",
        attachments=[("notes.txt", f"SSN {SSN}".encode())],
        **extra,  # type: ignore[arg-type]
    )


def run(data: bytes, name: str | None = "x.msg", limits: Limits | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), limits or Limits()))


def rows(parts: list[Part]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(p.location, p.type, p.text, p.flags) for p in parts]


def expected(base: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [
        (base, MSG, "", ()),
        (f"{base}/headers", "text/plain", HEADERS, ()),
        (f"{base}/body[1]", "text/plain", f"Please refund card {CARD}.\r\n", ()),
        (f"{base}/attachment[1]:notes.txt", "text/plain", f"SSN {SSN}", ()),
    ]


def test_msg_parts_and_locations_whatever_the_name() -> None:
    data = compound_file(message())
    for name in ("x.msg", "X.MSG", "x.bin", None):
        assert rows(run(data, name)) == expected(name or "item")


def test_msg_is_scanned_by_the_pipeline(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    result = scanner.scan(Item(data=compound_file(message()), name="x.msg"), ScanContext(channel="http"))
    assert [(f.detector, f.location, f.start, f.end) for f in result.findings] == [
        ("credit-card", "x.msg/body[1]", 19, 38),
        ("us-ssn", "x.msg/attachment[1]:notes.txt", 4, 15),
    ]
    assert [p.location for p in result.parts] == [row[0] for row in expected("x.msg")]
    assert result.flags == ()


def test_msg_attached_to_mail_and_inside_a_zip() -> None:
    data = compound_file(message())
    mail = EmailMessage()
    mail["Subject"] = "fwd"
    mail["From"] = "Ann Lee <ann@example.com>"
    mail.set_content("See the forwarded message.\n")
    mail.add_attachment(data, maintype="application", subtype="vnd.ms-outlook", filename="fwd.msg")
    parts = list(extract(Item(data=mail.as_bytes(), name="mail.eml"), Limits()))
    assert rows(parts)[3:] == expected("message/attachment[1]:fwd.msg")
    zipped = run(samples.zip_bytes({"mail/fwd.msg": data}), "bundle.zip")
    assert rows(zipped)[1:] == expected("bundle.zip/mail/fwd.msg")


def test_embedded_message_html_body_and_depth_limit() -> None:
    inner = outlook_message(
        "Fwd: cards",
        None,
        html=f"<p>card&nbsp;{CARD}</p>".encode(),
        attachments=[("list.csv", f"name,card\nBob,{CARD}\n".encode())],
        top=False,
    )
    data = compound_file(outlook_message("Outer", "see below", embedded=[inner]))
    base = "x.msg/attachment[1]:message.msg"
    assert rows(run(data)) == [
        ("x.msg", MSG, "", ()),
        ("x.msg/headers", "text/plain", "Subject: Outer\nFrom: Ann Lee\nTo: Bob Stone, Carol Diaz\n", ()),
        ("x.msg/body[1]", "text/plain", "see below", ()),
        (base, MSG, "", ()),
        (f"{base}/headers", "text/plain", "Subject: Fwd: cards\nFrom: Ann Lee\nTo: Bob Stone, Carol Diaz\n"
         "File-Name: list.csv\n", ()),
        (f"{base}/body[1]", "text/html", f"\ncard\xa0{CARD}\n", ()),
        (f"{base}/attachment[1]:list.csv", "text/csv", f"name,card\nBob,{CARD}\n", ()),
    ]  # fmt: skip
    shallow = run(data, limits=Limits(max_depth=0))
    assert rows(shallow)[3:] == [(base, MSG, "", ("limit:depth",))]


def test_8bit_strings_use_the_message_code_page() -> None:
    tree = outlook_message("x", None)
    del tree["__substg1.0_0037001F"]
    tree["__substg1.0_0037001E"] = "Счёт".encode("cp1251")
    tree["__substg1.0_1000001E"] = f"Карта {CARD}".encode("cp1251")
    tree["__properties_version1.0"] = b"\0" * 32 + struct.pack("<IIQ", 0x3FFD0003, 0, 1251)
    found = {p.location: p.text for p in run(compound_file(tree))}
    assert found["x.msg/headers"].startswith("Subject: Счёт\n")
    assert found["x.msg/body[1]"] == f"Карта {CARD}"


def test_attached_ole_object_is_unsupported() -> None:
    tree = outlook_message("ole", "see the object")
    tree["__attach_version1.0_#00000000"] = {"__substg1.0_3701000D": {"\x01Ole": b"\0" * 20}}
    assert rows(run(compound_file(tree)))[3:] == [
        ("x.msg/attachment[1]:message.msg", "application/octet-stream", "", ("unsupported",)),
    ]


RTF = (
    rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}\f0\fs20 Card 4539 1488 0343 6467\par "
    rb"Refund \'e9t\'e9 " + b"-" * 40 + rb"\par}"
)
RTF_TEXT = f"Card {CARD}\nRefund été {'-' * 40}\n"


def rtf_body(rtf: bytes, limits: Limits | None = None) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return rows(run(compound_file(outlook_message("rtf only", None, rtf=rtf)), limits=limits))[2:]


def test_compressed_rtf_follows_the_specification_examples() -> None:
    """[MS-OXRTFCP] section 3.1's two examples (the second's reference reaches over the
    write position), the uncompressed form, and the test writer's output."""
    hello = bytes.fromhex(
        "2d 00 00 00 2b 00 00 00 4c 5a 46 75 f1 c5 c7 a7 03 00 0a 00 72 63 70 67 31 32 35 42 32"
        "0a f3 20 68 65 6c 09 00 20 62 77 05 b0 6c 64 7d 0a 80 0f a0"
    )
    assert b"".join(lzfu.decompress(hello)) == b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
    crossing = bytes.fromhex("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0")
    assert b"".join(lzfu.decompress(crossing)) == b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"
    plain = struct.pack("<II4sI", 12 + len(RTF), len(RTF), b"MELA", 0) + RTF
    assert b"".join(lzfu.decompress(plain)) == RTF
    assert b"".join(lzfu.decompress(compressed_rtf(RTF * 100))) == RTF * 100
    with pytest.raises(ValueError, match="damaged"):
        list(lzfu.decompress(hello[:-1] + b"\xa1"))


def test_rtf_only_body_is_decompressed_and_read() -> None:
    assert rtf_body(compressed_rtf(RTF)) == [("x.msg/body[1]", "text/rtf", RTF_TEXT, ())]
    html = (
        rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}{\*\htmltag19 <html>}"
        rb"{\*\htmltag34 <body>}\htmlrtf {\htmlrtf0 Card 4539 1488 0343 6467{\*\htmltag244 <br>}\htmlrtf "
        rb"\line\htmlrtf0 }{\*\htmltag27 </body>}}"
    )
    assert rtf_body(compressed_rtf(html)) == [("x.msg/body[1]", "text/rtf", f"Card {CARD}\n", ())]
    both = compound_file(outlook_message("both", f"card {CARD}", rtf=compressed_rtf(RTF)))
    assert [p.location for p in run(both)] == ["x.msg", "x.msg/headers", "x.msg/body[1]"]


def test_damaged_compressed_rtf_is_corrupt() -> None:
    data = compressed_rtf(RTF)
    bad_crc = data[:12] + b"\0\0\0\0" + data[16:]
    assert rtf_body(bad_crc) == [("x.msg/body[1]", "text/rtf", RTF_TEXT, ("corrupt",))]
    assert rtf_body(data[:-8]) == [("x.msg/body[1]", "text/rtf", RTF_TEXT[:-1], ("corrupt",))]
    assert rtf_body(b"\x20\0\0\0compressed rtf") == [("x.msg/body[1]", "text/rtf", "", ("corrupt",))]
    uncompressed = struct.pack("<II4sI", 12 + len(RTF), len(RTF) + 10, b"MELA", 0) + RTF
    assert rtf_body(uncompressed) == [("x.msg/body[1]", "text/rtf", RTF_TEXT, ("corrupt",))]


def test_compressed_rtf_over_the_member_limit_is_cut() -> None:
    head = rb"{\rtf1 Card 4539 1488 0343 6467 "
    limits = Limits(max_member_bytes=4096)
    assert rtf_body(compressed_rtf(head + b"x" * 6000 + b"}"), limits) == [
        ("x.msg/body[1]", "text/rtf", f"Card {CARD} " + "x" * (4096 - len(head)), ("limit:size",)),
    ]
    assert rtf_body(compressed_rtf(bytes(range(256)) * 20), limits) == [
        ("x.msg/body[1]", "text/rtf", "", ("limit:size",)),
    ]


def test_rtf_only_msg_is_scanned_by_the_pipeline(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    data = compound_file(outlook_message("Refund", None, rtf=compressed_rtf(RTF)))
    result = scanner.scan(Item(data=data, name="x.msg"), ScanContext(channel="http"))
    assert [(f.detector, f.location, f.start, f.end) for f in result.findings] == [
        ("credit-card", "x.msg/body[1]", 5, 24),
    ]
    assert result.flags == ()


def test_member_and_file_limits() -> None:
    big = compound_file(outlook_message("big", "hi", attachments=[("a.bin", b"a" * 5000), ("b.txt", b"ok")]))
    parts = run(big, limits=Limits(max_member_bytes=4096))
    assert rows(parts)[3:] == [
        ("x.msg/attachment[1]:a.bin", "application/octet-stream", "", ("limit:size",)),
        ("x.msg/attachment[2]:b.txt", "text/plain", "ok", ()),
    ]
    capped = run(big, limits=Limits(max_files=2))
    assert [(p.location, p.flags) for p in capped][-1] == ("x.msg", ("limit:files",))


def test_damaged_msg_is_corrupt_and_random_damage_never_raises() -> None:
    data = compound_file(message(embedded=[outlook_message("inner", CARD, top=False)]))
    assert rows(run(data[:1500])) == [("x.msg", "application/x-ole-storage", "", ("corrupt",))]
    renamed = message()
    renamed["__substg1.0_10##001F"] = renamed.pop("__substg1.0_1000001F")
    assert rows(run(compound_file(renamed))) == [
        ("x.msg", MSG, "", ("corrupt",)),
        *(row for row in expected("x.msg")[1:] if not row[0].endswith("body[1]")),
    ]
    generator = random.Random(11)
    for _ in range(150):
        damaged = bytearray(data)
        for _ in range(generator.randint(1, 8)):
            damaged[generator.randrange(512, len(damaged))] = generator.randrange(256)
        parts = run(bytes(damaged))
        assert parts and all(p.location.startswith("x.msg") for p in parts)
        assert (
            any(CARD in p.text for p in parts)
            or any(p.flags for p in parts)
            or CARD.encode("utf-16-le") not in damaged
        )
