"""The shipped packs: each validates alone and together, and together they do what a
security team expects (table of sample items and contexts -> action and rules)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dlp.model import Action, Evidence, PartInfo, ScanContext
from dlp.policy import PolicySet, check_folders
from tests.policy.helpers import INTERNAL, evidence, finding, mail, upload

POLICIES = Path(__file__).resolve().parents[2] / "policies"
PACKS = ("default", "pci-dss", "gdpr", "ccpa", "hipaa", "secrets", "crm-exports")

OUT = mail("bob@partner.org")
IN = mail("carol@corp.example")
HTTP = upload()
ALLOW, ALERT, QUARANTINE, BLOCK = Action.ALLOW, Action.ALERT, Action.QUARANTINE, Action.BLOCK


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    """Every shipped pack, loaded together as a new installation does."""
    return PolicySet.load([POLICIES], internal_domains=INTERNAL)


def test_the_shipped_folder_holds_every_pack_and_passes_check() -> None:
    assert sorted(p.stem for p in POLICIES.glob("*.yaml")) == sorted(PACKS)
    policies, errors = check_folders([POLICIES])
    assert errors == [] and policies is not None
    assert all(rule.description != rule.id for rule in policies.rules)


@pytest.mark.parametrize("pack", PACKS)
def test_each_pack_loads_alone(tmp_path: Path, pack: str) -> None:
    shutil.copy(POLICIES / f"{pack}.yaml", tmp_path)
    assert PolicySet.load([tmp_path]).rules


def cards(n: int, confidence: str = "high") -> list:
    """`n` distinct card numbers in export.csv."""
    return [finding("credit-card", "pci", confidence, value=str(i)) for i in range(n)]


def many(detector: str, category: str, n: int, confidence: str = "high") -> list:
    """`n` distinct values of one detector in export.csv."""
    return [finding(detector, category, confidence, value=str(i)) for i in range(n)]


def attachment(name: str, mime: str, *flags: str) -> Evidence:
    """Evidence of one attachment with extraction flags and nothing found."""
    return evidence(parts=(PartInfo(f"message/attachment[1]:{name}", mime, 2048, flags, name),))


CASES = [
    ("low-card-out", evidence(*cards(1, "low")), OUT, ALLOW, []),
    ("low-ssn-out", evidence(finding("us-ssn", confidence="low")), OUT, ALLOW, []),
    (
        "medium-card-out-monitored",
        evidence(*cards(1, "medium")),
        OUT,
        ALLOW,
        ["pci-card-possible-outbound"],
    ),
    ("card-out", evidence(*cards(1)), OUT, QUARANTINE, ["pci-card-outbound"]),
    ("card-upload", evidence(*cards(1)), HTTP, QUARANTINE, ["pci-card-outbound"]),
    ("cards-out", evidence(*cards(5)), OUT, BLOCK, ["pci-cards-bulk-outbound", "pci-card-outbound"]),
    ("card-internal", evidence(*cards(1)), IN, ALERT, ["pci-card-internal"]),
    (
        "ssns-out",
        evidence(*many("us-ssn", "pii", 20)),
        OUT,
        BLOCK,
        ["ccpa-identifiers-bulk-outbound", "default-bulk-identifiers-outbound", "ccpa-identifier-outbound"],
    ),
    ("ssn-out", evidence(*many("us-ssn", "pii", 1)), OUT, QUARANTINE, ["ccpa-identifier-outbound"]),
    (
        "ssn-internal",
        evidence(*many("us-ssn", "pii", 1, "medium")),
        IN,
        ALERT,
        ["ccpa-identifier-internal"],
    ),
    ("medium-ssn-out", evidence(*many("us-ssn", "pii", 1, "medium")), OUT, ALLOW, []),
    (
        "passport-out",
        evidence(*many("us-passport", "pii", 1, "medium")),
        OUT,
        QUARANTINE,
        ["ccpa-identifier-outbound"],
    ),
    (
        "licenses-upload",
        evidence(*many("us-drivers-license", "pii", 12, "medium")),
        HTTP,
        BLOCK,
        ["ccpa-identifiers-bulk-outbound", "ccpa-identifier-outbound"],
    ),
    ("nino-out", evidence(*many("uk-nino", "pii", 1)), OUT, QUARANTINE, ["gdpr-national-id-outbound"]),
    (
        "dob-out",
        evidence(*many("date-of-birth", "pii", 1)),
        OUT,
        ALERT,
        ["gdpr-personal-data-outbound"],
    ),
    (
        "iban-out",
        evidence(*many("iban", "financial", 1)),
        OUT,
        ALERT,
        ["gdpr-personal-data-outbound"],
    ),
    (
        "signature-contacts-out",
        evidence(finding("email-address"), finding("phone-number")),
        OUT,
        ALLOW,
        [],
    ),
    (
        "contact-list-out-monitored",
        evidence(*many("email-address", "pii", 60)),
        OUT,
        ALLOW,
        ["gdpr-contact-data-bulk-outbound"],
    ),
    ("private-key-out", evidence(finding("private-key", "secret")), OUT, BLOCK, ["secrets-outbound"]),
    (
        "aws-key-upload",
        evidence(finding("aws-access-key", "secret")),
        HTTP,
        BLOCK,
        ["secrets-outbound"],
    ),
    (
        "maybe-token-out",
        evidence(finding("slack-token", "secret", "medium")),
        OUT,
        ALERT,
        ["secrets-possible-outbound"],
    ),
    ("key-internal", evidence(finding("private-key", "secret")), IN, ALERT, ["secrets-internal"]),
    (
        "encrypted-out",
        attachment("secret.zip", "application/zip", "encrypted"),
        OUT,
        QUARANTINE,
        ["default-unscannable-outbound"],
    ),
    ("encrypted-internal", attachment("secret.zip", "application/zip", "encrypted"), IN, ALLOW, []),
    (
        "bomb-upload",
        attachment("bomb.zip", "application/zip", "limit:ratio"),
        HTTP,
        QUARANTINE,
        ["default-unscannable-outbound"],
    ),
    (
        "corrupt-out",
        attachment("q3.xlsx", "application/vnd.ms-excel", "corrupt"),
        OUT,
        QUARANTINE,
        ["default-unscannable-outbound"],
    ),
    ("logo-out", attachment("logo.png", "image/png", "unsupported"), OUT, ALLOW, []),
    (
        "unknown-binary-out",
        attachment("data.bin", "application/octet-stream", "unsupported"),
        OUT,
        QUARANTINE,
        ["default-unscannable-outbound"],
    ),
    (
        "customer-list-out",
        evidence(finding("customer-list", "crm", count=250, rows=250)),
        OUT,
        BLOCK,
        ["crm-customer-list-bulk-outbound", "crm-customer-data-outbound"],
    ),
    (
        "small-customer-list-out",
        evidence(finding("customer-list", "crm", count=30, rows=30)),
        OUT,
        QUARANTINE,
        ["crm-customer-data-outbound"],
    ),
    (
        "crm-export-out",
        evidence(
            finding("crm-export-header", "crm", system="Salesforce"), finding("customer-list", "crm", rows=40)
        ),
        OUT,
        BLOCK,
        ["crm-export-outbound", "crm-customer-data-outbound"],
    ),
    ("customer-list-internal", evidence(finding("customer-list", "crm", rows=5000)), IN, ALLOW, []),
    (
        "edm-out",
        evidence(finding("edm:customers", "crm", records=25, columns=3)),
        OUT,
        BLOCK,
        ["crm-known-customers-bulk-outbound", "crm-known-customers-outbound"],
    ),
    (
        "edm-one-customer-out",
        evidence(finding("edm:customers", "crm", records=1, columns=2)),
        OUT,
        ALLOW,
        [],
    ),
    (
        "mrn-out",
        evidence(finding("medical-record-number", "phi")),
        OUT,
        QUARANTINE,
        ["hipaa-phi-outbound"],
    ),
    (
        "mrn-internal",
        evidence(finding("medical-record-number", "phi")),
        IN,
        ALERT,
        ["hipaa-phi-internal"],
    ),
    ("diagnosis-alone-out", evidence(finding("icd10-code", "phi")), OUT, ALLOW, []),
    ("diagnosis-alone-internal", evidence(finding("icd10-code", "phi")), IN, ALLOW, []),
    (
        "nhs-number-internal",
        evidence(finding("uk-nhs-number", "phi")),
        IN,
        ALERT,
        ["gdpr-personal-data-internal"],
    ),
    (
        "diagnosis-with-dob-internal",
        evidence(finding("icd10-code", "phi"), finding("date-of-birth")),
        IN,
        ALERT,
        ["gdpr-personal-data-internal", "hipaa-phi-internal"],
    ),
    (
        "patient-table-out",
        evidence(finding("icd10-code", "phi"), finding("customer-list", "crm", rows=15)),
        OUT,
        QUARANTINE,
        ["hipaa-phi-outbound"],
    ),
    (
        "patient-table-internal",
        evidence(finding("icd10-code", "phi"), finding("customer-list", "crm", rows=15)),
        IN,
        ALERT,
        ["hipaa-phi-internal"],
    ),
    (
        "diagnosis-with-dob-out",
        evidence(finding("icd10-code", "phi"), finding("date-of-birth")),
        OUT,
        QUARANTINE,
        ["hipaa-phi-outbound", "gdpr-personal-data-outbound"],
    ),
]


@pytest.mark.parametrize(
    ("item", "context", "action", "rule_ids"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_pack_intent(
    shipped: PolicySet, item: Evidence, context: ScanContext, action: Action, rule_ids: list[str]
) -> None:
    verdict = shipped.decide(item, context)
    assert verdict.action is action
    assert [r.rule_id for r in verdict.rules] == rule_ids


def test_card_verdict_explains_and_sets_the_clock(shipped: PolicySet) -> None:
    verdict = shipped.decide(evidence(*cards(5)), OUT)
    assert verdict.rules[0].explanation == (
        "5 distinct high-confidence credit-card values in attachment export.csv"
        " to external domain partner.org"
    )
    assert (verdict.regulations, dict(verdict.deadlines)) == (("pci-dss",), {"pci-dss": 24})
    assert verdict.message is not None and verdict.message.startswith("Message blocked")


def test_customer_list_implicates_gdpr_and_ccpa(shipped: PolicySet) -> None:
    verdict = shipped.decide(evidence(finding("customer-list", "crm", rows=250)), OUT)
    assert (verdict.regulations, dict(verdict.deadlines)) == (("gdpr", "ccpa"), {"gdpr": 72})


def test_the_example_exceptions_are_off_by_default(shipped: PolicySet) -> None:
    rules = {rule.id: rule for rule in shipped.rules}
    assert not rules["default-allow-trusted-partner"].enabled
    assert not rules["default-allow-internal-client"].enabled
    assert shipped.decide(evidence(*cards(5)), mail("a@partner.example")).action is Action.BLOCK
    assert shipped.decide(evidence(*cards(5)), upload("internal-archive")).action is Action.BLOCK


def test_the_example_exceptions_work_once_enabled(tmp_path: Path) -> None:
    for pack in PACKS:
        text = (POLICIES / f"{pack}.yaml").read_text("utf-8")
        (tmp_path / f"{pack}.yaml").write_text(text.replace("enabled: false", "enabled: true"), "utf-8")
    enabled = PolicySet.load([tmp_path], internal_domains=INTERNAL)
    partner = enabled.decide(evidence(*cards(5)), mail("a@partner.example"))
    assert (partner.action, partner.rules[0].rule_id) == (Action.ALLOW, "default-allow-trusted-partner")
    assert [r.rule_id for r in partner.rules[1:]] == ["pci-cards-bulk-outbound", "pci-card-outbound"]
    assert enabled.decide(evidence(*cards(5)), upload("internal-archive")).action is Action.ALLOW
    assert (
        enabled.decide(evidence(*cards(5)), mail("a@partner.example", "b@else.example")).action
        is Action.BLOCK
    )


def test_cli_scans_are_judged_as_if_leaving(shipped: PolicySet) -> None:
    verdict = shipped.decide(evidence(*cards(1)), ScanContext())
    assert verdict.action is Action.QUARANTINE
    assert verdict.rules[0].explanation.endswith("via cli (destination not known)")


def test_the_readme_example_pack_is_valid(tmp_path: Path) -> None:
    readme = (POLICIES / "README.md").read_text("utf-8")
    example = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example, "utf-8")
    policies = PolicySet.load([tmp_path], internal_domains=INTERNAL)
    assert [r.id for r in policies.rules] == ["pci-cards-bulk-outbound"]
    assert shipped_decides(policies) is Action.BLOCK


def shipped_decides(policies: PolicySet) -> Action:
    """The action for five distinct cards mailed to partner.org."""
    return policies.decide(evidence(*cards(5)), OUT).action
