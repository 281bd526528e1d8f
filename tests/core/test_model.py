"""Shared model: ids, ordering of actions and confidences, external recipients, JSON shape."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dlp.errors import ConfigError
from dlp.keys import load_or_create_key
from dlp.model import Action, Confidence, Finding, Item, ScanContext, new_id


def test_ulid_shape_and_order() -> None:
    first, second = new_id(now=1_700_000_000.0), new_id(now=1_700_000_001.0)
    assert len(first) == 26 and first < second
    assert set(first) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_ulids_made_in_one_millisecond_sort_in_the_order_made() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_severity_and_confidence_order() -> None:
    assert max([Action.ALERT, Action.BLOCK, Action.QUARANTINE]) is Action.BLOCK
    assert Action.parse("Quarantine").exit_code == 2
    assert Confidence.parse("high") > Confidence.MEDIUM > Confidence.LOW


@pytest.mark.parametrize(
    ("recipients", "external"),
    [
        (("a@example.com", "b@mail.example.com"), ()),
        (("a@example.com", "c@other.org"), ("c@other.org",)),
        (("d@notexample.com",), ("d@notexample.com",)),
    ],
)
def test_external_recipients(recipients: tuple[str, ...], external: tuple[str, ...]) -> None:
    context = ScanContext(channel="smtp", recipients=recipients, internal_domains=("example.com",))
    assert context.external_recipients() == external


def test_item_holds_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Item()
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    assert Item(path=path).size == 3
    assert Item(data=b"abcd").open().read() == b"abcd"


def test_key_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert load_or_create_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", ["not hex at all", "abcd", "\xff"])
def test_bad_key_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "k.key"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(ConfigError, match="key file"):
        load_or_create_key(path)


def test_finding_of_equals_the_constructor() -> None:
    args = ("credit-card", "pci", "body", 3, 19, Confidence.HIGH, "4111********1111", "hmac-sha256:00")
    built = Finding.of(*args, "pattern plain", ("pci-dss",))
    made = Finding(*args, explanation="pattern plain", regulations=("pci-dss",))
    assert (built, hash(built), repr(built)) == (made, hash(made), repr(made))
    assert built.to_dict() == made.to_dict()
    assert (built.count, built.attributes) == (1, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.start = 4  # type: ignore[misc]
