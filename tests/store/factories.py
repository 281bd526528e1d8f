"""Scan results and contexts built by hand, so store tests need no engine or policies."""

from __future__ import annotations

from pathlib import Path

from dlp.config import Settings
from dlp.model import (
    Action,
    Confidence,
    Finding,
    PartInfo,
    RuleMatch,
    ScanContext,
    ScanResult,
    Verdict,
    new_id,
)

PLANTED_CARD = "4111111111111111"
PLANTED_MESSAGE = (
    "From: alice@example.com\r\nTo: bob@partner.example\r\nSubject: numbers\r\n\r\n"
    f"card {PLANTED_CARD} exp 12/29\r\n"
).encode()


def settings_for(state_dir: Path, **overrides: object) -> Settings:
    """Settings with the state under a test's temporary folder."""
    return Settings.model_validate({"state_dir": state_dir, **overrides})


def card_result(
    action: Action = Action.QUARANTINE, mode: str = "enforce", name: str = "mail.eml"
) -> ScanResult:
    """A result as the pipeline would give for one card number (masked and hashed)."""
    finding = Finding(
        detector="credit-card",
        category="financial",
        location="message/body",
        start=5,
        end=21,
        confidence=Confidence.HIGH,
        preview="4111 **** **** 1111",
        hash="hmac-sha256:" + "ab" * 32,
        explanation="Luhn valid",
        regulations=("pci-dss",),
    )
    rule = RuleMatch(
        "pci-card-external", action, "1 high-confidence card to an external recipient", mode=mode
    )
    verdict = Verdict(action=action, rules=(rule,), regulations=("pci-dss",), deadlines={"pci-dss": 24})
    part = PartInfo("message/body", "text/plain", 40)
    return ScanResult(
        new_id(), verdict, (part,), (finding,), (), item_size=len(PLANTED_MESSAGE), item_name=name
    )


def mail_context() -> ScanContext:
    """An outbound mail to one external recipient."""
    return ScanContext(
        channel="smtp",
        sender="alice@example.com",
        recipients=("bob@partner.example",),
        client="127.0.0.1",
        internal_domains=("example.com",),
    )
