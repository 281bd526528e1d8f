"""Custom keyword dictionaries: terms found case-insensitively on whole words, loader errors located."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.detect import DefinitionError, Engine, dictionary
from dlp.detect.dictionary import MAX_TERMS
from dlp.model import Confidence, Part

BUILTIN = Path(__file__).resolve().parents[2] / "detectors"
KEY = b"test-key-0123456789"
DEFINITION = """\
id: project-codename
description: Internal project code names.
category: crm
anchor: dictionary
dictionary:
  file: {file}
  confidence: medium
keywords: [confidential]
mask: last4
normalise: lower
"""
TERMS = "# code names of 2026\nFalcon\n\n  Project   Nightjar  \nblue-heron\nfalcon\n"


def _folder(tmp_path: Path, terms: str | None = TERMS, definition: str = DEFINITION) -> Path:
    folder = tmp_path / "user"
    (folder / "lists").mkdir(parents=True)
    if terms is not None:
        (folder / "lists" / "codenames.txt").write_text(terms, encoding="utf-8")
    (folder / "project-codename.yaml").write_text(definition.format(file="lists/codenames.txt"), "utf-8")
    return folder


def _found(engine: Engine, text: str) -> list[tuple[str, int, int, str, Confidence]]:
    findings = engine.detect(Part("doc", "text/plain", len(text), text))
    return [(f.detector, f.start, f.end, text[f.start : f.end], f.confidence) for f in findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Kick-off for FALCON on Monday.", [(13, 19, "FALCON", Confidence.MEDIUM)]),
        ("falcon", [(0, 6, "falcon", Confidence.MEDIUM)]),
        ("Confidential: project nightjar slips.", [(14, 30, "project nightjar", Confidence.HIGH)]),
        (
            "The Blue-Heron and falcon teams.",
            [(4, 14, "Blue-Heron", Confidence.MEDIUM), (19, 25, "falcon", Confidence.MEDIUM)],
        ),
        ("Falcons and peregrine falconry, falcon_x, xfalcon, falcon2.", []),
        ("project  nightjar", []),
    ],
)
def test_terms_are_found_on_whole_words(
    tmp_path: Path, text: str, expected: list[tuple[int, int, str, Confidence]]
) -> None:
    engine = Engine.from_folders([BUILTIN, _folder(tmp_path)], hash_key=KEY)
    assert _found(engine, text) == [("project-codename", *hit) for hit in expected]


def test_finding_carries_preview_hash_and_explanation(tmp_path: Path) -> None:
    engine = Engine.from_folders([BUILTIN, _folder(tmp_path)], hash_key=KEY)
    text = "Nightjar? No: Project Nightjar (confidential)."
    [finding] = engine.detect(Part("doc", "text/plain", len(text), text))
    again = engine.detect(Part("doc", "text/plain", 16, "project nightjar"))
    assert (finding.preview, finding.explanation) == (
        "******* ****tjar",
        "pattern dictionary codenames.txt; context confidential",
    )
    assert finding.hash == again[0].hash
    info = next(i for i in engine.detectors if i.id == "project-codename")
    assert info.confidence_rules.startswith("term dictionary codenames.txt=medium;")


def test_hundred_thousand_terms_load_and_match(tmp_path: Path) -> None:
    terms = "\n".join(f"codename-{i:06d}" for i in range(100_000))
    engine = Engine.from_folders([_folder(tmp_path, terms)], hash_key=KEY)
    text = "Status of CODENAME-099999 and codename-000000x and codename-042042."
    assert [hit[:4] for hit in _found(engine, text)] == [
        ("project-codename", 10, 25, "CODENAME-099999"),
        ("project-codename", 51, 66, "codename-042042"),
    ]


@pytest.mark.parametrize(
    ("terms", "where", "line", "message"),
    [
        (None, "definition", 6, "does not exist"),
        ("# only a comment\n\n   \n", "definition", 6, "has no terms"),
        ("alpha\nx\n", "dictionary", 2, "2 to 256 characters"),
        ("alpha\n" + "y" * 257 + "\n", "dictionary", 2, "2 to 256 characters"),
    ],
)
def test_dictionary_errors_name_file_line_and_field(
    tmp_path: Path, terms: str | None, where: str, line: int, message: str
) -> None:
    folder = _folder(tmp_path, terms)
    file = folder / ("project-codename.yaml" if where == "definition" else "lists/codenames.txt")
    with pytest.raises(DefinitionError) as info:
        Engine.from_folders([folder], hash_key=KEY)
    assert (info.value.file, info.value.line, info.value.field) == (str(file), line, "dictionary.file")
    assert message in info.value.message


def test_the_limit_is_a_million_terms() -> None:
    assert MAX_TERMS == 1_000_000


def test_more_terms_than_the_limit_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dictionary, "MAX_TERMS", 3)
    folder = _folder(tmp_path, "# header\nalpha\nbeta\nALPHA\ngamma\ndelta\nepsilon\n")
    with pytest.raises(DefinitionError) as info:
        Engine.from_folders([folder], hash_key=KEY)
    assert (info.value.file, info.value.line, info.value.field) == (
        str(folder / "lists" / "codenames.txt"),
        6,
        "dictionary.file",
    )
    assert "more than 3 terms" in info.value.message


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "message"),
    [
        ("anchor: dictionary", "anchor: keyword", 6, "dictionary", "only allowed with anchor: dictionary"),
        ("  file: lists/codenames.txt\n", "", 6, "dictionary.file", "missing"),
        ("  confidence: medium", "  confidence: sure", 7, "dictionary.confidence", "not one of"),
        ("  confidence: medium", "  weight: 2", 7, "dictionary.weight", "unknown key"),
        (
            "keywords:",
            "patterns: [{id: p, regex: '(?P<value>x)'}]\nkeywords:",
            8,
            "patterns",
            "not allowed with anchor: dictionary",
        ),
    ],
)
def test_dictionary_field_errors(
    tmp_path: Path, old: str, new: str, line: int, field: str, message: str
) -> None:
    text = DEFINITION.format(file="lists/codenames.txt")
    assert old in text
    folder = _folder(tmp_path, definition=text.replace(old, new).replace("{", "{{").replace("}", "}}"))
    with pytest.raises(DefinitionError) as info:
        Engine.from_folders([folder], hash_key=KEY)
    assert (info.value.file, info.value.line, info.value.field) == (
        str(folder / "project-codename.yaml"),
        line,
        field,
    )
    assert message in info.value.message
