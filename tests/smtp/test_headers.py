"""Header edits on raw bytes: forged X-DLP-* fields go, ours are prepended, nothing else
changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.smtp.headers import rewrite_headers

ADD = [("X-DLP-Verdict", "alert"), ("X-DLP-Incident", "01ABC")]
OURS = b"X-DLP-Verdict: alert\r\nX-DLP-Incident: 01ABC\r\n"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"Subject: a\r\n\r\nbody\r\n", OURS + b"Subject: a\r\n\r\nbody\r\n"),
        (
            b"X-DLP-Verdict: allow\r\nSubject: a\r\n\r\nX-DLP-Verdict: body\r\n",
            OURS + b"Subject: a\r\n\r\nX-DLP-Verdict: body\r\n",
        ),
        (
            b"Subject: a\r\nx-dlp-incident: 1\r\n\tfolded\r\n more\r\nTo: b\r\n\r\n",
            OURS + b"Subject: a\r\nTo: b\r\n\r\n",
        ),
        (b"X-DLP-Verdict: allow\nSubject: a\n\nbody\n", OURS + b"Subject: a\n\nbody\n"),
        (b"Subject: only headers\r\nX-DLP-Verdict: x", OURS + b"Subject: only headers\r\n"),
        (b"\r\nno headers\r\n", OURS + b"\r\nno headers\r\n"),
        (b"X-DLP-Verdict-Extra: x\r\nX-DLPish: kept\r\n\r\n", OURS + b"X-DLPish: kept\r\n\r\n"),
    ],
)
def test_rewrite_headers(message: bytes, expected: bytes) -> None:
    assert rewrite_headers(message, ADD) == expected


def test_nothing_to_do_returns_the_same_bytes() -> None:
    message = b"Subject: a\r\n\r\nbody\r\n"
    assert rewrite_headers(message) is message


_NAMES = st.sampled_from(["Subject", "To", "X-DLP-Verdict", "x-dlp-incident", "X-Other", "Received"])
_VALUES = st.text(alphabet="abc :;\t", max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.lists(st.tuples(_NAMES, _VALUES, st.booleans()), max_size=8),
    body=st.binary(max_size=60),
)
def test_only_dlp_fields_change(fields: list[tuple[str, str, bool]], body: bytes) -> None:
    lines = []
    for name, value, folded in fields:
        lines.append(f"{name}: {value}\r\n".encode() + (b" continued\r\n" if folded else b""))
    message = b"".join(lines) + b"\r\n" + body
    kept = b"".join(
        line
        for line, (name, _, _) in zip(lines, fields, strict=True)
        if not name.lower().startswith("x-dlp-")
    )
    assert rewrite_headers(message, ADD) == OURS + kept + b"\r\n" + body
