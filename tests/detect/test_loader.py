"""Each way a detector definition can be wrong fails with the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.detect import DefinitionError, Engine

GOOD = """\
id: {id}
description: Order numbers of our shop.
category: pii
regulations: [gdpr]
anchor: digits
digits: [8, 8]
patterns:
  - id: plain
    regex: '(?<!\\d)(?P<value>\\d{{8}})(?!\\d)'
    confidence: medium
keywords: [shop order]
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("category: pii\n", "category: pii\ncolour: red\n", 4, "colour", "unknown key"),
        ("regex: '(?<!\\d)", "regex: '(?<!\\d)(", 9, "patterns[0].regex", "bad regex"),
        ("(?P<value>\\d{8})", "\\d{8}", 9, "patterns[0].regex", "named group"),
        ("keywords:", "validator: no-such-check\nkeywords:", 11, "validator", "unknown validator"),
        ("category: pii", "category: gossip", 3, "category", "not one of"),
        ("anchor: digits", "anchor: everywhere", 5, "anchor", "not one of"),
        ("regulations: [gdpr]", "regulations: [gdpr, hipster]", 4, "regulations[1]", "not one of"),
        ("    confidence: medium", "    confidence: certain", 10, "patterns[0].confidence", "not one of"),
        ("    confidence: medium", "    weight: 3", 10, "patterns[0].weight", "unknown key"),
        ("digits: [8, 8]", "digits: [8]", 6, "digits", "[min, max]"),
        ("keywords:", "window: many\nkeywords:", 11, "window", "integer"),
        ("keywords:", "mask: rot13\nkeywords:", 11, "mask", "unknown mask"),
        ("keywords:", "filters: [not-timestamp, nope]\nkeywords:", 11, "filters[1]", "unknown filter"),
        ("id: shop-order", "id: other-name", 1, "id", "does not match the file name"),
        ("description: Order numbers of our shop.\n", "", 1, "description", "missing"),
        ("    confidence: medium", "    anchor: digits", 10, "patterns[0].anchor", "not one of"),
        ("    confidence: medium", "    anchor: email", 8, "patterns", "no pattern runs at the detector"),
    ],
)
def test_loader_error_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    text = GOOD.format(id="shop-order")
    assert old in text
    path = _write(tmp_path, "shop-order", text.replace(old, new, 1))
    with pytest.raises(DefinitionError) as info:
        Engine.from_folders([tmp_path], hash_key=b"k")
    error = info.value
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: field '{field}':")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken", "id: broken\npatterns: [\n")
    with pytest.raises(DefinitionError) as info:
        Engine.from_folders([tmp_path], hash_key=b"k")
    assert info.value.file == str(path)
    assert info.value.line == 3
    assert "not valid YAML" in info.value.message


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="does not exist"):
        Engine.from_folders([tmp_path / "nowhere"], hash_key=b"k")


def test_good_definition_loads_and_detects(tmp_path: Path) -> None:
    from dlp.model import Part

    _write(tmp_path, "shop-order", GOOD.format(id="shop-order"))
    engine = Engine.from_folders([tmp_path], hash_key=b"k")
    assert [info.id for info in engine.detectors] == ["shop-order"]
    text = "Your shop order 12345678 ships today"
    findings = engine.detect(Part("x", "text/plain", len(text), text))
    assert [(f.detector, f.start, f.end, f.confidence.label) for f in findings] == [
        ("shop-order", 16, 24, "high")
    ]


def test_later_folder_overrides_a_builtin_id(tmp_path: Path) -> None:
    builtin = Path(__file__).resolve().parents[2] / "detectors"
    _write(tmp_path, "credit-card", GOOD.format(id="credit-card"))
    engine = Engine.from_folders([builtin, tmp_path], hash_key=b"k")
    card = next(info for info in engine.detectors if info.id == "credit-card")
    assert card.description == "Order numbers of our shop."
    assert card.source == str(tmp_path / "credit-card.yaml")
    assert len(engine.detectors) == len(list(builtin.glob("*.yaml")))
