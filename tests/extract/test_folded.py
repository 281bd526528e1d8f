"""iCalendar invites and vCards fold long lines (RFC 5545, RFC 6350: a line break then a
space or tab); they are read unfolded, so a value the fold split is found whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.config import load_settings
from dlp.extract import extract
from dlp.extract.text import unfolded
from dlp.model import Item, Limits, ScanContext
from dlp.pipeline import Scanner

INVITE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    "SUMMARY:Refund call\r\n"
    "DESCRIPTION:Customer Ann Lee asked for the refund to card 4539 1488 03\r\n"
    " 43 6467 and her SSN 536-22-\r\n\t1234 for the form.\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
DESCRIPTION = (
    "DESCRIPTION:Customer Ann Lee asked for the refund to card 4539 1488 0343 6467 "
    "and her SSN 536-22-1234 for the form.\r\n"
)


def _mail() -> bytes:
    return (
        "From: Ann <ann@corp.example>\r\nTo: bob@partner.example\r\nSubject: invite\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSee the invite.\r\n"
        '--b\r\nContent-Type: text/calendar; method=REQUEST; charset="utf-8"\r\n\r\n'
        f"{INVITE}--b--\r\n"
    ).encode()


def test_invite_inline_in_mail_is_unfolded() -> None:
    parts = list(extract(Item(data=_mail(), name=None, declared_type="message/rfc822"), Limits()))
    [calendar] = [p for p in parts if p.location == "message/body[2]"]
    assert DESCRIPTION in calendar.text
    assert "\r\n " not in calendar.text and "\r\n\t" not in calendar.text


@pytest.mark.parametrize("name", ["invite.ics", "contact.vcf", None])
def test_calendar_and_vcard_files_are_unfolded(name: str | None) -> None:
    data = INVITE if name != "contact.vcf" else INVITE.replace("VCALENDAR", "VCARD")
    [part] = extract(Item(data=data.encode(), name=name), Limits())
    assert DESCRIPTION in part.text


def test_findings_in_a_folded_invite(tmp_path: Path) -> None:
    scanner = Scanner.from_settings(load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)}))
    result = scanner.scan(Item(data=_mail(), name=None, declared_type="message/rfc822"), ScanContext())
    found = {(f.detector, f.location) for f in result.findings if f.detector in ("credit-card", "us-ssn")}
    assert found == {("credit-card", "message/body[2]"), ("us-ssn", "message/body[2]")}


@pytest.mark.parametrize("cut", range(1, len(INVITE)))
def test_a_fold_across_pieces_is_joined(cut: int) -> None:
    assert "".join(unfolded([INVITE[:cut], INVITE[cut:]])) == "".join(unfolded([INVITE]))
