"""The engine's contract: offsets, table context, aggregates, hashes, timeouts, no raw values."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from dlp.cli import main
from dlp.detect import DIGIT_RUN, Candidate, Engine
from dlp.model import Confidence, Finding, Part, Table

BUILTIN = Path(__file__).resolve().parents[2] / "detectors"
KEY = b"test-key-0123456789"
CARD = "4526 0181 5908 3012"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_folders([BUILTIN], hash_key=KEY)


def _detect(engine: Engine, text: str, table: Table | None = None, offset: int = 0) -> list[Finding]:
    return engine.detect(Part("doc", "text/plain", len(text), text, table=table, offset=offset))


def test_finding_fields(engine: Engine) -> None:
    text = f"Please charge card number {CARD} today."
    [finding] = _detect(engine, text)
    digest = hmac.new(KEY, b"4526018159083012", hashlib.sha256).hexdigest()
    assert finding == Finding(
        detector="credit-card",
        category="pci",
        location="doc",
        start=26,
        end=45,
        confidence=Confidence.HIGH,
        preview="4526 **** **** 3012",
        hash=f"hmac-sha256:{digest}",
        explanation="pattern grouped; validator credit-card: pass; context card",
        regulations=("pci-dss", "glba"),
    )


def test_chunk_offset_is_added(engine: Engine) -> None:
    [finding] = _detect(engine, f"card {CARD}", offset=10_000)
    assert (finding.start, finding.end) == (10_005, 10_024)


def test_detect_hands_its_candidates_to_exact_data_match(engine: Engine) -> None:
    text = f"Order 20240117 paid with card {CARD} by ann@example.com"
    values: list[Candidate] = []
    findings = engine.detect(Part("doc", "text/plain", len(text), text, offset=500), values)
    assert values == [
        (DIGIT_RUN, "20240117", 6, 14),
        (DIGIT_RUN, CARD, 30, 49),
        ("credit-card", CARD, 30, 49),
        ("email-address", "ann@example.com", 53, 68),
    ]
    assert [(f.detector, f.start) for f in findings] == [("credit-card", 530), ("email-address", 553)]


def test_exact_data_match_gets_only_the_digit_runs_it_can_use(engine: Engine) -> None:
    text = "Order 20240117 paid with card 4526 0181 5908 3012; Ref 88412 415 555 0100; call 4155550100."
    values: list[Candidate] = []
    engine.detect(Part("doc", "text/plain", len(text), text), values, (frozenset({10, 11}), 11))
    assert [v for v in values if v[0] == DIGIT_RUN] == [
        (DIGIT_RUN, CARD, 30, 49),
        (DIGIT_RUN, "88412 415 555 0100", 55, 73),
        (DIGIT_RUN, "4155550100", 80, 90),
    ]


def test_ipv6_addresses_are_found_at_colons_and_times_are_not(engine: Engine) -> None:
    text = "At 10:30:00 (a::b) 2607:f8b0:4004:c07::71, 2607:f8b0:4004:c07::72 and ::ffff:8.8.8.8 logged in."
    found = [(f.detector, text[f.start : f.end], f.confidence) for f in _detect(engine, text)]
    assert found == [
        ("ip-address", "2607:f8b0:4004:c07::71", Confidence.LOW),
        ("ip-address", "2607:f8b0:4004:c07::72", Confidence.LOW),
        ("ip-address", "8.8.8.8", Confidence.LOW),
    ]


def test_same_value_same_hash_whatever_the_separators(engine: Engine) -> None:
    spaced = _detect(engine, f"card {CARD}")[0]
    plain = _detect(engine, "card " + CARD.replace(" ", ""))[0]
    assert spaced.hash == plain.hash
    other_key = Engine.from_folders([BUILTIN], hash_key=b"another key")
    assert _detect(other_key, f"card {CARD}")[0].hash != spaced.hash


@pytest.mark.parametrize(
    "digits",
    [
        "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
        "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
    ],
    ids=["full-width", "arabic-indic"],
)
def test_digits_of_other_scripts_are_found_as_ascii_ones(engine: Engine, digits: str) -> None:
    text = "Paid with card " + CARD.translate(str.maketrans("0123456789", digits)) + " yesterday."
    [finding] = _detect(engine, text)
    ascii_finding = _detect(engine, f"Paid with card {CARD} yesterday.")[0]
    assert (finding.detector, finding.start, finding.end) == ("credit-card", 15, 34)
    assert (finding.confidence, finding.hash, finding.preview) == (
        ascii_finding.confidence,
        ascii_finding.hash,
        ascii_finding.preview,
    )


@pytest.mark.parametrize(
    ("text", "detector", "value"),
    [
        ("Card 4539\u00a01488\u00a00343\u00a06467 yesterday.", "credit-card", "4539 1488 0343 6467"),
        ("Card 4539\u202f1488\u202f0343\u202f6467 yesterday.", "credit-card", "4539 1488 0343 6467"),
        ("Card 4539\u200b1488\u200b0343\u200b6467 yesterday.", "credit-card", "4539 1488 0343 6467"),
        ("Card 4539\u20131488\u20130343\u20136467 yesterday.", "credit-card", "4539-1488-0343-6467"),
        ("Employee SSN: 536\u201122\u20111234 on file.", "us-ssn", "536-22-1234"),
        ("Employee SSN: 536\u221222\u22121234 on file.", "us-ssn", "536-22-1234"),
    ],
    ids=["no-break space", "narrow no-break space", "zero-width space", "en dash", "nb hyphen", "minus"],
)
def test_unicode_separators_are_read_as_ascii_ones(
    engine: Engine, text: str, detector: str, value: str
) -> None:
    start = text.index(value[:3])
    ascii_text = text[:start] + value + text[start + len(value) :]
    [finding] = [f for f in _detect(engine, text) if f.detector == detector]
    [ascii_finding] = [f for f in _detect(engine, ascii_text) if f.detector == detector]
    assert (finding.start, finding.end) == (start, start + len(value))
    assert (finding.confidence, finding.hash, finding.preview) == (
        ascii_finding.confidence,
        ascii_finding.hash,
        ascii_finding.preview,
    )


def test_column_header_is_context_far_below_it(engine: Engine) -> None:
    rows = "".join(f"Person {i},{100 + i}\n" for i in range(400))
    text = f"Name,Employee SSN\n{rows}Ann Lee,536221234\n"
    table = Table(",", ("Name", "Employee SSN"))
    ssn = [f for f in _detect(engine, text, table) if f.detector == "us-ssn"]
    assert [(text[f.start : f.end], f.confidence, f.explanation) for f in ssn] == [
        ("536221234", Confidence.HIGH, "pattern plain; validator us-ssn: pass; context column 'Employee SSN'")
    ]
    plain = _detect(engine, text.replace("Employee SSN", "Amount"), Table(",", ("Name", "Amount")))
    assert [f for f in plain if f.detector == "us-ssn"] == []


def test_customer_list_counts_rows(engine: Engine) -> None:
    rows = "".join(f"Person {i},p{i}@example.com\n" for i in range(12))
    text = "Name,Email\n" + rows
    found = [f for f in _detect(engine, text, Table(",", ("Name", "Email"))) if f.detector == "customer-list"]
    assert [(f.count, dict(f.attributes), f.confidence, f.preview) for f in found] == [
        (12, {"rows": 12}, Confidence.MEDIUM, "12 rows")
    ]


def test_crm_export_header_names_the_system(engine: Engine) -> None:
    header = ("Id", "IsDeleted", "AccountId", "LastName", "FirstName", "OwnerId", "CreatedDate")
    row = "003A0000006Vm9rIAQ,false,001A0000006Vm9rIAC,Lee,Ann,005A0000001bcde,2024-01-01"
    text = ",".join(header) + "\n" + row + "\n"
    found = [f for f in _detect(engine, text, Table(",", header)) if f.detector == "crm-export-header"]
    expected = [({"system": "salesforce"}, Confidence.HIGH)]
    assert [(dict(f.attributes), f.confidence) for f in found] == expected


def test_weaker_overlapping_match_of_another_detector_is_dropped(engine: Engine) -> None:
    found = _detect(engine, "NHS number 943 476 5919")
    assert [(f.detector, f.confidence) for f in found] == [("uk-nhs-number", Confidence.HIGH)]


def test_user_regex_runs_with_a_timeout(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(
        "id: slow\ndescription: catastrophic backtracking\ncategory: pii\nanchor: literal\n"
        "literals: ['start:']\npatterns:\n  - id: p\n    regex: 'start:(?P<value>(a|aa)+b)'\n",
        encoding="utf-8",
    )
    engine = Engine.from_folders([BUILTIN, tmp_path], hash_key=KEY)
    assert _detect(engine, "start:" + "a" * 60 + "c") == []


def test_detectors_lists_every_definition(engine: Engine) -> None:
    ids = [d.id for d in engine.detectors]
    assert ids == sorted(p.stem for p in BUILTIN.glob("*.yaml"))
    assert {d.category for d in engine.detectors} == {"pii", "pci", "phi", "financial", "secret", "crm"}


@pytest.mark.parametrize(
    ("text", "raw", "preview"),
    [
        (f"card {CARD}", CARD, "4526 **** **** 3012"),
        ("Employee SSN: 536-22-1234.", "536-22-1234", "***-**-1234"),
        ("mail ann.lee@example.com", "ann.lee@example.com", "a***@example.com"),
        ("key AKIA2OGYBAH6STMMNXNN", "AKIA2OGYBAH6STMMNXNN", "AKIA********"),
        ("IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", "**** **** **** **** **30 00"),
    ],
)
def test_scan_json_holds_the_preview_never_the_raw_value(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    raw: str,
    preview: str,
) -> None:
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "sample.txt"
    sample.write_text(text, encoding="utf-8")
    main(["scan", str(sample)])
    out = capsys.readouterr().out
    result = json.loads(out)
    assert preview in [f["preview"] for f in result["findings"]]
    compact = raw.replace(" ", "").replace("-", "")
    assert raw not in out
    assert compact not in out.replace(" ", "").replace("-", "")


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_detectors_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    assert main(["detectors", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        listed = json.loads(out)
        assert [d["id"] for d in listed] == sorted(p.stem for p in BUILTIN.glob("*.yaml"))
        card = next(d for d in listed if d["id"] == "credit-card")
        assert (card["category"], card["regulations"]) == ("pci", ["pci-dss", "glba"])
    else:
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["id", "category", "regulations"]
        assert len(lines) == 1 + len(list(BUILTIN.glob("*.yaml")))


@pytest.mark.parametrize("prefix", ["", "Grüße — ", "\udcff\udcfe ", "😀 naïve ", "İ ﬃ "])
def test_keyword_context_and_offsets_after_non_ascii_text(engine: Engine, prefix: str) -> None:
    text = f"{prefix}Please charge card number {CARD} today."
    [finding] = _detect(engine, text)
    assert (finding.start, finding.end) == (len(prefix) + 26, len(prefix) + 45)
    assert finding.explanation == "pattern grouped; validator credit-card: pass; context card"


def test_non_ascii_keyword_is_context(engine: Engine) -> None:
    text = "Élise — numéro d'assurance sociale : 130 692 544."
    [finding] = _detect(engine, text)
    assert (finding.detector, text[finding.start : finding.end]) == ("ca-sin", "130 692 544")
    assert finding.explanation.endswith("context numéro d'assurance sociale")
