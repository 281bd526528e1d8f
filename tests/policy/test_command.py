"""`dlp policy check` and `dlp policy test` through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.cli import main

POLICIES = Path(__file__).resolve().parents[2] / "policies"
CARDS = (
    "4666 1760 3137 2159\n4010 9281 5901 3962\n4485 2538 8853 9336\n4881 8174 1433 3776\n"
    "4760 2077 6426 5651\n"
)


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys and state under the test's folder; corp.example is internal."""
    monkeypatch.setenv("DLP_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DLP_INTERNAL_DOMAINS", "corp.example")
    monkeypatch.delenv("DLP_POLICIES", raising=False)


def test_check_passes_the_shipped_packs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(POLICIES)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: 29 rules (27 enabled) in 7 files, version ")
    assert captured.err == "", "every detector id and category the packs name is loaded"


def test_check_without_a_folder_checks_what_serve_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["policy", "check"]) == 0, "no ./policies here: the shipped packs, as dlp serve loads"
    assert capsys.readouterr().out.startswith("ok: 29 rules (27 enabled) in 7 files, version ")
    monkeypatch.setenv("DLP_POLICIES", str(tmp_path / "missing"))
    assert main(["policy", "check"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path / 'missing'}: policy folder does not exist",
        "1 error(s)",
    ]


def test_check_warns_about_names_no_detector_has(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "typo.yaml").write_text(
        "rules:\n"
        "  - id: typo\n"
        "    action: block\n"
        "    when:\n"
        "      any:\n"
        "        - findings: {detectors: [credit_card, 'us-*', 'edm:crm'], categories: [secrets]}\n"
        "        - not: {crm: {export_header: true}}\n"
    )
    assert main(["policy", "check", str(tmp_path)]) == 0
    where = f"{tmp_path / 'typo.yaml'}:2: rule 'typo'"
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {where} names detector 'credit_card', which is not loaded",
        f"warning: {where} names category 'secrets', which no loaded detector has",
    ]


def test_check_prints_every_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.yaml").write_text("rules:\n  - id: r\n    action: explode\n    when: {flags: [melted]}\n")
    (bad / "b.yaml").write_text(
        "rules:\n  - id: s\n    colour: red\n    action: block\n    when: {channel: smtp}\n"
    )
    assert main(["policy", "check", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{bad / 'a.yaml'}:3: field 'rules[0].action': 'explode' is not one of: "
        "block, quarantine, alert, allow",
        f"{bad / 'a.yaml'}:4: field 'rules[0].when.flags': unknown flag 'melted'; "
        "expected encrypted, corrupt, unsupported, truncated or limit:*",
        f"{bad / 'b.yaml'}:3: field 'rules[0].colour': unknown key; expected one of: "
        "id, description, enabled, mode, severity, regulations, when, unless, action, message, notify, "
        "allow_hashes, allow_senders, allow_recipients",
        "3 error(s)",
    ]


def test_test_explains_an_eml_with_context_from_its_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eml = tmp_path / "refunds.eml"
    eml.write_text(
        "From: Alice <alice@corp.example>\nTo: bob@partner.org\nCc: carol@corp.example\nSubject: refunds\n\n"
        + CARDS
    )
    assert main(["policy", "test", str(eml), "--policy", str(POLICIES)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "action:      block",
        "context:     channel smtp, sender alice@corp.example, recipients bob@partner.org, "
        "carol@corp.example",
        "message:     Message blocked: it contains payment card numbers (PCI DSS). "
        "Contact your security team.",
        "rule:        pci-cards-bulk-outbound [enforce, block, critical]",
        "             5 distinct high-confidence credit-card values in message body "
        "to external domain partner.org",
    ]
    assert "regulation:  pci-dss (notify within 24 hours)" in lines


def test_test_with_explicit_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "cards.txt"
    text.write_text(CARDS)
    args = ["policy", "test", str(text), "--policy", str(POLICIES), "--channel", "smtp"]
    assert main([*args, "--sender", "alice@corp.example", "--recipient", "carol@corp.example"]) == 1
    out = capsys.readouterr().out
    assert "rule:        pci-card-internal [enforce, alert, medium]" in out
    assert main(["policy", "test", str(tmp_path / "missing.txt")]) == 66
