"""RTF: text destinations kept, binary and formatting destinations skipped, every escape decoded."""

from __future__ import annotations

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits

PREFIX = rb"{\rtf1\ansi\ansicpg1252{\fonttbl\f0\fswiss Helvetica;}{\colortbl;\red255\green0\blue0;}\f0\pard "


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (rb"Card 4111 1111 1111 1111\par", "Card 4111 1111 1111 1111\n"),
        (rb"Caf\'e9 \u8364? na\u239\'efve\tab x\line", "Caf\u00e9 \u20ac na\u00efve\tx\n"),
        (rb"{\*\generator Riched20;}{\*\unknown junk}kept", "kept"),
        (rb"{\info{\title Secret plan}{\creatim\yr2024}}{\header Head\par}body", "Secret planHead\nbody"),
        (rb"{\pict\wmetafile8 0a0b0c}{\field{\*\fldinst HYPERLINK x}{\fldrslt link}}", "link"),
        (rb"{\*\annotation note}{\*\shpinst{\sp{\sn t}{\sv 1}}{\shptxt box}}", "notebox"),
        (rb"a\bin3 {}}b\emdash c\~d", "ab\u2014c\u00a0d"),
        (rb"a\bin999999999 Card 4111 1111 1111 1111", "aCard 4111 1111 1111 1111"),
        (rb"\ansicpg1251\'cf\'f0\'e8", "\u041f\u0440\u0438"),
        (rb"\u-9999999999?\u55357?x\ansicpg99999\'e9", "\ufffd\ufffdx\u00e9"),
    ],
)
def test_rtf_text(body: bytes, expected: str) -> None:
    data = PREFIX + body + b"}"
    parts = list(extract(Item(data=data, name="a.rtf"), Limits()))
    assert [(p.location, p.type, p.flags, p.text) for p in parts] == [("a.rtf", "text/rtf", (), expected)]
