"""PowerPoint 97-2003 presentations (.ppt) are read from the records of their
`PowerPoint Document` stream: slide, notes and master text (UTF-16 and 8-bit atoms),
CStrings; an encrypted one is `encrypted`, a damaged one `corrupt` on what was read
before the damage. The fixture was saved as .ppt by LibreOffice 7.4 (Impress) from a
python-pptx deck (no Python library writes .ppt): one slide titled "Quarterly deck"
with a card in its body and an SSN in its notes. LibreOffice stores a 575 KiB preview
bitmap in `\\x05SummaryInformation`; the compound file was rebuilt without that stream
with libgsf's `gsf createole` from the other streams, unchanged."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import olefile

from dlp.config import load_settings
from dlp.extract import extract
from dlp.model import Item, Limits, Part, ScanContext
from dlp.pipeline import Scanner

DECK = (Path(__file__).parent / "fixtures" / "deck.ppt").read_bytes()
POWERPOINT = "application/vnd.ms-powerpoint"
STREAM = "PowerPoint Document"
CARD = "4539 1488 0343 6467"
MASTERS = (
    "Click to edit Master title style\n"
    "Click to edit Master text styles\nSecond level\nThird level\nFourth level\nFifth level\n"
    + "*\n" * 7
)
SLIDE = f"Quarterly deck\nCard {CARD}\n___PPT10\n"
NOTES = "SSN 536-22-1234\n*\n"


def run(data: bytes, name: str | None = "deck.ppt", limits: Limits | None = None) -> list[Part]:
    return list(extract(Item(data=data, name=name), limits or Limits()))


def rows(parts: list[Part]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(p.location, p.type, p.text, p.flags) for p in parts]


def atom(kind: int, text: str) -> bytes:
    """A text atom (recVer 0, recInstance 0) as LibreOffice writes it: header and text."""
    body = text.encode("latin-1" if kind == 0x0FA8 else "utf-16-le")
    return struct.pack("<HHL", 0, kind, len(body)) + body


def patched(tmp_path: Path, stream: str, edit: Callable[[bytearray], None]) -> bytes:
    """The fixture with one stream edited in place (same size), as olefile writes it."""
    path = tmp_path / "deck.ppt"
    path.write_bytes(DECK)
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        data = bytearray(ole.openstream(stream).read())
        edit(data)
        ole.write_stream(stream, bytes(data))
    return path.read_bytes()


def test_slide_notes_and_master_text_whatever_the_name() -> None:
    for name in ("deck.ppt", "DECK.PPT", "deck.txt", None):
        assert rows(run(DECK, name)) == [(name or "item", POWERPOINT, MASTERS + SLIDE + NOTES, ())]


def test_card_on_a_slide_and_ssn_in_notes_are_found(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    result = scanner.scan(Item(data=DECK, name="deck.ppt"), ScanContext(channel="http"))
    at = len(MASTERS)
    assert [(f.detector, f.location, f.start, f.end) for f in result.findings] == [
        ("credit-card", "deck.ppt", at + 20, at + 39),
        ("us-ssn", "deck.ppt", len(MASTERS + SLIDE) + 4, len(MASTERS + SLIDE) + 15),
    ]
    assert result.flags == ()


def test_8bit_text_atom_is_latin1(tmp_path: Path) -> None:
    """The title's UTF-16 atom (28 bytes) becomes an 8-bit atom of 28 Latin-1 bytes."""
    latin = "Déjà vu: café crème brûlées."

    def edit(data: bytearray) -> None:
        at = data.index(atom(0x0FA0, "Quarterly deck"))
        data[at : at + 36] = atom(0x0FA8, latin)

    text = MASTERS + SLIDE.replace("Quarterly deck", latin) + NOTES
    assert rows(run(patched(tmp_path, STREAM, edit))) == [("deck.ppt", POWERPOINT, text, ())]


def test_encrypted_presentation_is_flagged(tmp_path: Path) -> None:
    """Three marks, each alone: the `Current User` headerToken of an encrypted file, a
    CryptSession10Container record (0x2F14, here the first record's type) and an
    `EncryptedSummary` stream (the `\\x01CompObj` directory entry renamed)."""

    def token(data: bytearray) -> None:
        data[12:16] = struct.pack("<L", 0xF3D1C4DF)

    def crypt_session(data: bytearray) -> None:
        data[2:4] = struct.pack("<H", 0x2F14)

    old = "\x01CompObj".encode("utf-16-le") + b"\x00" * 2
    new = "EncryptedSummary".encode("utf-16-le") + b"\x00" * 2
    at = DECK.index(old)
    assert struct.unpack_from("<H", DECK, at + 64)[0] == len(old)
    renamed = bytearray(DECK)
    renamed[at : at + 64] = new.ljust(64, b"\x00")
    renamed[at + 64 : at + 66] = struct.pack("<H", len(new))
    flagged = [("deck.ppt", POWERPOINT, "", ("encrypted",))]
    assert rows(run(patched(tmp_path, "Current User", token))) == flagged
    assert rows(run(patched(tmp_path, STREAM, crypt_session))) == flagged
    assert rows(run(bytes(renamed))) == flagged


def test_damage_stops_the_walk_with_corrupt(tmp_path: Path) -> None:
    """A record longer than its container (the notes' atom) keeps the text before it;
    one at the start, or containers nested past 32, leave nothing; a cut compound
    file is not read at all."""

    def long_notes(data: bytearray) -> None:
        at = data.index(atom(0x0FA0, "SSN 536-22-1234"))
        data[at + 4 : at + 8] = struct.pack("<L", len(data))

    def long_first(data: bytearray) -> None:
        data[4:8] = struct.pack("<L", len(data))

    def nested(data: bytearray) -> None:
        for depth in range(33):
            struct.pack_into("<HHL", data, 8 * depth, 0x000F, 0x03E8, len(data) - 8 * (depth + 1))

    assert rows(run(patched(tmp_path, STREAM, long_notes))) == [
        ("deck.ppt", POWERPOINT, MASTERS + SLIDE, ("corrupt",))
    ]
    assert rows(run(patched(tmp_path, STREAM, long_first))) == [("deck.ppt", POWERPOINT, "", ("corrupt",))]
    assert rows(run(patched(tmp_path, STREAM, nested))) == [("deck.ppt", POWERPOINT, "", ("corrupt",))]
    assert [p.flags for p in run(DECK[:5000])] == [("corrupt",)]


def test_stream_over_the_member_limit_is_not_read() -> None:
    parts = run(DECK, limits=Limits(max_member_bytes=4096))
    assert rows(parts) == [("deck.ppt", POWERPOINT, "", ("limit:size",))]
