"""A detected value in an attachment's file name is found (through the message's
`headers` part) and never shown raw: part locations, part names and finding locations
carry its masked preview instead."""

from __future__ import annotations

import json

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
    result = scanner.scan(
        Item(data=mail("q3 plan.txt", "nothing"), name=None, declared_type="message/rfc822"), ScanContext()
    )
    assert [p.location for p in result.parts][-1] == "message/attachment[1]:q3 plan.txt"
    assert result.findings == ()
