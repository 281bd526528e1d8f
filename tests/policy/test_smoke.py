"""First checks of the loader and resolution on the shipped default pack."""

from __future__ import annotations

from pathlib import Path

from dlp.model import Action, PartInfo
from dlp.policy import PolicySet
from tests.policy.helpers import INTERNAL, evidence, mail

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def test_encrypted_attachment_leaving_is_quarantined_and_explained() -> None:
    policies = PolicySet.load([POLICIES], internal_domains=INTERNAL)
    part = PartInfo("message/attachment[1]:x.zip", "application/zip", 100, ("encrypted",), "x.zip")
    verdict = policies.decide(evidence(parts=(part,)), mail("bob@partner.org"))
    assert verdict.action is Action.QUARANTINE
    assert [r.rule_id for r in verdict.rules] == ["default-unscannable-outbound"]
    expected = "encrypted content in attachment x.zip to external domain partner.org"
    assert verdict.rules[0].explanation == expected
    assert verdict.policy_version == policies.version and len(policies.version) == 12
