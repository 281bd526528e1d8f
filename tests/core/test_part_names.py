"""A detected value in an attachment's, an upload's or an archive member's file name is
found and never shown raw: part locations, part names, the item name and finding
locations carry its masked preview instead."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from dlp.config import load_settings
from dlp.model import Item, ScanContext
from dlp.pipeline import Scanner

CARD = "4111 1111 1111 1111"


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    state = tmp_path_factory.mktemp("state")
    return Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(state)}))


def mail(filename: str, content: str) -> bytes:
    return (
        "Subject: files\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        f'--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="{filename}"\r\n\r\n'
        f"{content}\r\n--B--\r\n"
    ).encode()


def test_card_in_a_file_name_is_found_and_masked(scanner: Scanner) -> None:
    result = scanner.scan(
        Item(data=mail(f"card {CARD}.txt", f"again {CARD}"), name=None, declared_type="message/rfc822"),
        ScanContext(),
    )
    cards = [f for f in result.findings if f.detector == "credit-card"]
    preview = cards[0].preview
    assert preview != CARD
    assert [(f.location, f.preview) for f in cards] == [
        ("message/headers", preview),
        (f"message/attachment[1]:card {preview}.txt", preview),
    ]
    assert [p.location for p in result.parts] == [
        "message",
        "message/headers",
        "message/body[1]",
        f"message/attachment[1]:card {preview}.txt",
    ]
    assert result.parts[3].name == f"card {preview}.txt"
    assert CARD not in json.dumps(result.to_dict())
    assert CARD not in repr(result)


def test_clean_file_names_are_kept(scanner: Scanner) -> None:
    data = mail("=?utf-8?q?q3_plan=E2=80=A6_final.txt?=", "nothing")
    result = scanner.scan(Item(data=data, name=None, declared_type="message/rfc822"), ScanContext())
    assert [p.location for p in result.parts][-1] == "message/attachment[1]:q3 plan\u2026 final.txt"
    assert result.findings == ()


UPLOAD_CARD = "4532015112830366"


def test_card_in_an_upload_name_is_a_finding_and_masked(scanner: Scanner) -> None:
    """The HTTP API's ?filename= and `dlp scan`'s file name: the value in the name is found
    at `<name>#names` and never shown raw (item name, part locations, explanations)."""
    result = scanner.scan(Item(data=b"quarter,units\nQ1,10\n", name=f"{UPLOAD_CARD}.csv"), ScanContext())
    [card] = [f for f in result.findings if f.detector == "credit-card"]
    masked = f"{card.preview}.csv"
    assert card.preview != UPLOAD_CARD
    assert (card.location, card.start, card.end) == (f"{masked}#names", 0, len(UPLOAD_CARD))
    assert result.item_name == masked
    assert [p.location for p in result.parts] == [masked, f"{masked}#names"]
    assert UPLOAD_CARD not in json.dumps(result.to_dict())
    assert UPLOAD_CARD not in repr(result)


def test_card_in_an_archive_member_name_is_masked(scanner: Scanner) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"exports/{UPLOAD_CARD}.txt", "nothing to see")
    result = scanner.scan(Item(data=buffer.getvalue(), name="bundle.zip"), ScanContext())
    [card] = [f for f in result.findings if f.detector == "credit-card"]
    assert card.location == "bundle.zip#names"
    assert [p.location for p in result.parts] == [
        "bundle.zip",
        f"bundle.zip/exports/{card.preview}.txt",
        "bundle.zip#names",
    ]
    assert UPLOAD_CARD not in json.dumps(result.to_dict())


def test_a_value_in_an_attachment_name_is_one_finding(scanner: Scanner) -> None:
    """A mail's attachment names are in its `headers` part already: not found twice."""
    result = scanner.scan(
        Item(data=mail(f"{UPLOAD_CARD}.txt", "nothing"), name=None, declared_type="message/rfc822"),
        ScanContext(),
    )
    assert [f.location for f in result.findings if f.detector == "credit-card"] == ["message/headers"]
    assert UPLOAD_CARD not in json.dumps(result.to_dict())


def test_an_upload_name_is_one_bounded_location_segment(scanner: Scanner) -> None:
    odd = scanner.scan(Item.from_text(f"Card {CARD}", name="a\x00b\tc.txt"), ScanContext())
    assert [p.location for p in odd.parts] == ["a?b?c.txt"]
    assert {f.location for f in odd.findings} == {"a?b?c.txt"}
    long = scanner.scan(Item.from_text("hello", name="n" * 5000 + ".txt"), ScanContext())
    # the last 512 characters, less the 255 after the cut where a value could be cut in two
    assert [p.location for p in long.parts] == ["\u2026" + "n" * 253 + ".txt"]


DIGITS = "4929180432771533"


def zip_result(scanner: Scanner, names: list[str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "hello\n")
    item = Item(data=buffer.getvalue(), name="files.zip", declared_type=None)
    return json.dumps(scanner.scan(item, ScanContext()).to_dict())


@pytest.mark.parametrize("cut_at", [3, 8, 12, 15])
def test_no_piece_of_a_value_cut_with_a_long_name_is_shown(scanner: Scanner, cut_at: int) -> None:
    """A member name longer than 512 characters keeps its end; a card number across the
    cut must not leave its first digits in the result (here the piece kept has 16 - cut_at
    digits, too few to detect)."""
    tail = "y" * (512 - (16 - cut_at) - 4) + ".csv"
    name = "x" * 300 + " " + DIGITS + tail
    assert len(name) > 512 and name[-512:].startswith(DIGITS[cut_at:] + "y")
    shown = zip_result(scanner, [name])
    assert DIGITS[cut_at:] + "y" not in shown
    assert "y" * 200 + ".csv" in shown


def test_a_card_in_a_folder_name_of_an_archive_is_masked(scanner: Scanner) -> None:
    shown = zip_result(scanner, [f"card {DIGITS}/notes.txt"])
    assert DIGITS not in shown
    assert "files.zip/card 4929********1533/notes.txt" in shown


def test_a_card_in_a_sheet_name_is_masked(scanner: Scanner) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"card {DIGITS}"
    sheet.append(["hello"])
    buffer = io.BytesIO()
    book.save(buffer)
    result = scanner.scan(Item(data=buffer.getvalue(), name="book.xlsx"), ScanContext())
    shown = json.dumps(result.to_dict())
    assert DIGITS not in shown
    assert "book.xlsx#card 4929********1533" in shown
