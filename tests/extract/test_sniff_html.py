"""HTML is recognised without a doctype or `<html>` (a fragment starting with a tag, or
any text named .htm/.html) and in UTF-16, so its entities are decoded before detection
instead of hiding the value (`4111&#32;1111...`)."""

from __future__ import annotations

import pytest

from dlp.extract import extract
from dlp.model import Item, Limits
from tests.extract.samples import CARD

FRAGMENT = "<div><p>Card&#32;4111&#32;1111&#32;1111&#32;1111</p><p>Thanks</p></div>"
PAGE = "<html><body><p>Card&#32;4111&#32;1111&#32;1111&#32;1111</p><p>Thanks</p></body></html>"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (FRAGMENT.encode(), None),
        (FRAGMENT.encode(), "snippet.html"),
        (b"Card&#32;4111&#32;1111&#32;1111&#32;1111<p>Thanks", "export.HTM"),
        (PAGE.encode("utf-16"), "page.html"),
        (PAGE.encode("utf-16-le"), None),
    ],
    ids=["fragment", "fragment-named", "no-leading-tag-named", "utf16-bom", "utf16-no-bom"],
)
def test_html_is_read_as_html(data: bytes, name: str | None) -> None:
    parts = list(extract(Item(data=data, name=name), Limits()))
    assert [(p.type, p.flags) for p in parts] == [("text/html", ())]
    assert f"Card {CARD}" in parts[0].text
    assert "<" not in parts[0].text


def test_prose_with_angle_brackets_stays_text() -> None:
    data = b"Use a <b> tag to make text bold, and </b> to stop.\n"
    parts = list(extract(Item(data=data, name="notes.txt"), Limits()))
    assert [(p.type, p.text) for p in parts] == [("text/plain", data.decode())]
