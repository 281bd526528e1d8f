"""Resolution: severity order, monitor mode, allow exceptions, allowlists, messages, clocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlp.model import Action, ScanContext
from dlp.policy import PolicySet
from tests.policy.helpers import evidence, finding, mail, policy_from

CARD = finding("credit-card", "pci", value="4111")
OUT = mail("bob@partner.org")

LADDER = """
regulations: [pci-dss]
rules:
  - id: card-alert
    action: alert
    severity: low
    when: {findings: {detectors: [credit-card]}}
  - id: card-quarantine
    action: quarantine
    severity: high
    message: "held: card"
    when: {findings: {detectors: [credit-card]}, external: true}
  - id: card-block-monitor
    mode: monitor
    action: block
    severity: critical
    regulations: [glba]
    message: "monitor message"
    when: {findings: {detectors: [credit-card]}, external: true}
  - id: partner-allow
    action: allow
    when: {recipients: {domains: [acquirer.example], every: true}}
  - id: partner-allow-monitor
    mode: monitor
    action: allow
    when: {recipients: {domains: [partner.org]}}
  - id: card-off
    enabled: false
    action: block
    when: {findings: {detectors: [credit-card]}}
"""


@pytest.mark.parametrize(
    ("context", "action", "rule_ids", "message"),
    [
        (
            OUT,
            Action.QUARANTINE,
            ["card-quarantine", "card-alert", "card-block-monitor", "partner-allow-monitor"],
            "held: card",
        ),
        (mail("carol@corp.example"), Action.ALERT, ["card-alert"], None),
        (
            mail("x@acquirer.example"),
            Action.ALLOW,
            ["partner-allow", "card-quarantine", "card-alert", "card-block-monitor"],
            None,
        ),
        (
            mail("x@acquirer.example", "y@evil.example"),
            Action.QUARANTINE,
            ["card-quarantine", "card-alert", "card-block-monitor"],
            "held: card",
        ),
    ],
    ids=["most-severe-enforced", "internal", "allow-exception-wins", "allow-needs-every-recipient"],
)
def test_resolution(
    tmp_path: Path, context: ScanContext, action: Action, rule_ids: list[str], message: str | None
) -> None:
    policies = policy_from(tmp_path, ladder=LADDER)
    verdict = policies.decide(evidence(CARD), context)
    assert verdict.action is action
    assert [r.rule_id for r in verdict.rules] == rule_ids
    assert verdict.message == message
    modes = {r.rule_id: r.mode for r in verdict.rules}
    assert modes.get("card-block-monitor", "monitor") == "monitor"


def test_monitor_never_changes_the_action_or_the_regulations(tmp_path: Path) -> None:
    policies = policy_from(tmp_path, ladder=LADDER)
    verdict = policies.decide(evidence(CARD), OUT)
    assert verdict.regulations == ("pci-dss",)
    assert dict(verdict.deadlines) == {"pci-dss": 24}
    monitored = [r for r in verdict.rules if r.rule_id == "card-block-monitor"]
    assert [(r.mode, r.action, r.regulations) for r in monitored] == [("monitor", Action.BLOCK, ("glba",))]


def test_allowed_verdict_has_no_clock(tmp_path: Path) -> None:
    verdict = policy_from(tmp_path, ladder=LADDER).decide(evidence(CARD), mail("x@acquirer.example"))
    assert (verdict.action, verdict.regulations, dict(verdict.deadlines)) == (Action.ALLOW, (), {})


def test_nothing_matches_allows_with_version(tmp_path: Path) -> None:
    policies = policy_from(tmp_path, ladder=LADDER)
    verdict = policies.decide(evidence(), mail("z@elsewhere.example"))
    assert (verdict.action, verdict.rules, verdict.policy_version) == (Action.ALLOW, (), policies.version)


SEVERITY = """
rules:
  - id: b-low
    action: block
    severity: low
    message: "low block"
    when: {channel: smtp}
  - id: a-critical
    action: block
    severity: critical
    message: "critical block"
    when: {channel: smtp}
  - id: c-quarantine
    action: quarantine
    severity: critical
    message: "quarantine"
    when: {channel: smtp}
"""


def test_message_comes_from_the_most_severe_rule(tmp_path: Path) -> None:
    verdict = policy_from(tmp_path, s=SEVERITY).decide(evidence(), OUT)
    assert verdict.action is Action.BLOCK
    assert [r.rule_id for r in verdict.rules] == ["a-critical", "b-low", "c-quarantine"]
    assert verdict.message == "critical block"


ALLOWLISTS = """
allow_hashes: ["hmac-sha256:credit-card-4111"]
allow_senders: ["@billing.corp.example", "robot@corp.example"]
rules:
  - id: card-out
    action: block
    allow_hashes: ["credit-card-4242"]
    allow_recipients: [auditor@partner.org, "trusted.example"]
    when: {findings: {detectors: [credit-card]}, external: true}
"""


@pytest.mark.parametrize(
    ("values", "context", "matched"),
    [
        (["4111"], OUT, False),
        (["4242"], OUT, False),
        (["4111", "5555"], OUT, True),
        (["5555"], mail("bob@partner.org", sender="x@billing.corp.example"), False),
        (["5555"], mail("bob@partner.org", sender="x@sub.billing.corp.example"), False),
        (["5555"], mail("bob@partner.org", sender="robot@corp.example"), False),
        (["5555"], mail("bob@partner.org", sender="human@corp.example"), True),
        (["5555"], mail("auditor@partner.org", "a@x.trusted.example"), False),
        (["5555"], mail("auditor@partner.org", "other@partner.org"), True),
    ],
    ids=[
        "pack-hash",
        "rule-hash-without-prefix",
        "one-value-not-listed",
        "sender-domain",
        "sender-subdomain",
        "sender-address",
        "sender-not-listed",
        "recipients-all-listed",
        "recipient-not-listed",
    ],
)
def test_allowlists(tmp_path: Path, values: list[str], context: ScanContext, matched: bool) -> None:
    policies = policy_from(tmp_path, a=ALLOWLISTS)
    item = evidence(*(finding("credit-card", "pci", value=v) for v in values))
    assert policies.decide(item, context).action is (Action.BLOCK if matched else Action.ALLOW)


CLOCKS = """
rules:
  - id: many
    action: alert
    regulations: [gdpr, hipaa, pci-dss, glba, ccpa, sox]
    when: {channel: smtp}
"""


def test_deadlines_per_regulation_and_overrides(tmp_path: Path) -> None:
    verdict = policy_from(tmp_path, c=CLOCKS).decide(evidence(), OUT)
    assert verdict.regulations == ("gdpr", "hipaa", "pci-dss", "glba", "ccpa", "sox")
    assert dict(verdict.deadlines) == {"gdpr": 72, "hipaa": 1440, "pci-dss": 24, "glba": 720}
    stricter = policy_from(tmp_path, d="deadlines: {gdpr: 48, ccpa: 720}\nrules: []\n")
    assert dict(stricter.decide(evidence(), OUT).deadlines) == {
        "gdpr": 48,
        "hipaa": 1440,
        "pci-dss": 24,
        "glba": 720,
        "ccpa": 720,
    }


def test_pack_disabled_and_rule_listing(tmp_path: Path) -> None:
    policies = policy_from(
        tmp_path,
        off="enabled: false\nrules: [{id: off-rule, action: block, when: {channel: smtp}}]\n",
        on="regulations: [gdpr]\n"
        "rules: [{id: on-rule, description: Rule on, action: alert, when: {channel: smtp}}]\n",
    )
    assert [r.rule_id for r in policies.decide(evidence(), OUT).rules] == ["on-rule"]
    listing = [r.to_dict() for r in policies.rules]
    folder = tmp_path / "policies"
    assert listing == [
        {
            "id": "off-rule",
            "description": "off-rule",
            "action": "block",
            "mode": "enforce",
            "severity": "medium",
            "regulations": [],
            "enabled": False,
            "source": str(folder / "off.yaml"),
        },
        {
            "id": "on-rule",
            "description": "Rule on",
            "action": "alert",
            "mode": "enforce",
            "severity": "medium",
            "regulations": ["gdpr"],
            "enabled": True,
            "source": str(folder / "on.yaml"),
        },
    ]


def test_internal_domains_come_from_the_set_or_the_context(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "x.yaml").write_text("rules: [{id: out, action: block, when: {external: true}}]\n")
    bare = ScanContext(channel="smtp", recipients=("a@corp.example",))
    assert PolicySet.load([folder]).decide(evidence(), bare).action is Action.BLOCK
    assert PolicySet.load([folder], ("corp.example",)).decide(evidence(), bare).action is Action.ALLOW
    told = ScanContext(channel="smtp", recipients=("a@corp.example",), internal_domains=("corp.example",))
    assert PolicySet.load([folder]).decide(evidence(), told).action is Action.ALLOW


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    first = policy_from(tmp_path, c=CLOCKS)
    again = policy_from(tmp_path, c=CLOCKS)
    changed = policy_from(tmp_path, c=CLOCKS.replace("alert", "block"))
    assert first.version == again.version != changed.version
    assert len(first.version) == 12 and int(first.version, 16) >= 0
