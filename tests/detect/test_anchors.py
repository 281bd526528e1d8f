"""The anchor scans over character classes find exactly what a plain `re` pass over the text
finds (the reference below), at character offsets, whatever the text holds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.detect.anchors import MIN_RUN, classes, digit_runs, hex_colons, letters_digits
from tests.memory import traced_peak

_REFERENCE_RUN = re.compile(r"[0-9](?=[0-9 \-./()]{5})[0-9]*(?:[ \-./()]{1,2}[0-9]+)*")
_REFERENCE_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}")

# Digits, separators, capitals, small letters, other ASCII and non-ASCII characters (a
# full-width digit, an accented capital, an emoji, a lone surrogate), in any order.
_ALPHABET = [*"0123456789 -./()GBDEab_:,+\n", "\uff14", "\u00c9", "\U0001f600", "\ud800"]
_TEXT = st.text(alphabet=st.sampled_from(_ALPHABET))


def _reference_runs(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _REFERENCE_RUN.finditer(text) if m.end() - m.start() >= MIN_RUN]


def _reference_iban_starts(text: str) -> list[int]:
    return [m.start() for m in _REFERENCE_IBAN_START.finditer(text)]


@settings(max_examples=300)
@given(_TEXT)
def test_digit_runs_are_the_reference_runs(text: str) -> None:
    assert digit_runs(classes(text)) == _reference_runs(text)


@settings(max_examples=300)
@given(_TEXT)
def test_letters_digits_are_the_reference_starts(text: str) -> None:
    assert letters_digits(classes(text)) == _reference_iban_starts(text)


def test_offsets_are_character_offsets_after_non_ascii_text() -> None:
    text = "\u00dcberweisung \U0001f600 an DE89 3704 0044 0532 0130 00, Tel. 030 1234-5678"
    assert letters_digits(classes(text)) == [text.index("DE89")]
    assert [text[s:e] for s, e in digit_runs(classes(text))] == ["89 3704 0044 0532 0130 00", "030 1234-5678"]


def test_hex_colons_are_runs_shaped_like_ipv6_not_times() -> None:
    text = "at 10:30:00 from 2001:db8::1, 1:2:3:4:5:6:7:8 and fe80::1%eth0; ratio 16:9:4; Note::x"
    assert hex_colons(text) == [text.index(":db8"), text.index(":2:3"), text.index("::1%")]


def test_a_long_run_is_found_without_state_per_group() -> None:
    """One run of 500,000 digit groups (a 2-MB text "1 2 1 2 ..."): the regular-expression
    engine kept state for each group, about 93 times the text's size. Memory is traced,
    not timed."""
    kinds = classes("1 2 " * 500_000)
    runs, peak = traced_peak(lambda: digit_runs(kinds))
    assert runs == [(0, len(kinds) - 1)]
    assert peak < len(kinds)
