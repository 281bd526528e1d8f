"""Outlook items (.msg): headers, plain and HTML bodies, attachments and embedded
messages at their locations, alone, attached to MIME mail and inside a ZIP; limits and
damage become flags. The files are built by `tests.extract.msgfile` (no Python library
writes .msg) and read by olefile like any Outlook file."""

from __future__ import annotations

import random
import struct
from email.message import EmailMessage
from pathlib import Path

from dlp.config import load_settings
from dlp.extract import extract
from dlp.model import Item, Limits, Part, ScanContext
from dlp.pipeline import Scanner
from tests.extract import samples
from tests.extract.msgfile import Tree, compound_file, outlook_message

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


def test_unreadable_pieces_are_flagged() -> None:
    tree = outlook_message("rtf only", None)
    tree["__substg1.0_10090102"] = b"\x20\0\0\0compressed rtf"
    tree["__attach_version1.0_#00000000"] = {"__substg1.0_3701000D": {"\x01Ole": b"\0" * 20}}
    assert rows(run(compound_file(tree)))[2:] == [
        ("x.msg/body[1]", "application/rtf", "", ("unsupported",)),
        ("x.msg/attachment[1]:message.msg", "application/octet-stream", "", ("unsupported",)),
    ]


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
