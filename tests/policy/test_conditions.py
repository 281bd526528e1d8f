"""Every condition kind, table-driven: (condition, evidence, context) -> explanation or no match."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dlp.model import Evidence, PartInfo, ScanContext
from tests.policy.helpers import evidence, finding, mail, policy_from, upload

OUT = mail("bob@partner.org")
IN = mail("carol@corp.example")
MIXED = mail("carol@corp.example", "bob@partner.org")
HTTP = upload()
CLI = ScanContext()

CARD = finding("credit-card", "pci")
CARD_MEDIUM = finding("credit-card", "pci", confidence="medium")


def cards(n: int, distinct: bool = True, location: str = "message/attachment[1]:export.csv") -> list:
    """`n` card findings, with distinct values or all the same."""
    return [
        finding("credit-card", "pci", value=str(i if distinct else 0), location=location) for i in range(n)
    ]


def part(location: str, mime: str, *flags: str, name: str | None = None) -> PartInfo:
    """A part description as extraction reports it."""
    return PartInfo(location, mime, 100, flags, name)


ZIP_ENCRYPTED = part("message/attachment[1]:secret.zip", "application/zip", "encrypted", name="secret.zip")
CSV = part("message/attachment[1]:export.csv", "text/csv", name="export.csv")
PNG_UNSUPPORTED = part("message/attachment[2]:logo.png", "image/png", "unsupported", name="logo.png")
BLOB_UNSUPPORTED = part("message/attachment[2]:data.bin", "application/x-foo", "unsupported", name="data.bin")
KEY_FILE = part("message/attachment[1]:id_rsa.key", "text/plain", name="id_rsa.key")
RATIO = part("bomb.zip", "application/zip", "limit:ratio", name="bomb.zip")

CASES = [
    # findings: id, confidence, count, distinct, per part, attributes
    (
        "id",
        "findings: {detectors: [credit-card]}",
        evidence(CARD),
        OUT,
        "1 high-confidence credit-card value in attachment export.csv",
    ),
    (
        "min-confidence-miss",
        "findings: {detectors: [credit-card], min_confidence: high}",
        evidence(CARD_MEDIUM),
        OUT,
        None,
    ),
    (
        "min-confidence-hit",
        "findings: {detectors: [credit-card], min_confidence: medium}",
        evidence(CARD_MEDIUM),
        OUT,
        "1 medium-confidence credit-card value in attachment export.csv",
    ),
    (
        "max-confidence-miss",
        "findings: {detectors: [credit-card], max_confidence: medium}",
        evidence(CARD),
        OUT,
        None,
    ),
    (
        "category",
        "findings: {categories: [secret]}",
        evidence(finding("aws-access-key", "secret")),
        OUT,
        "1 high-confidence aws-access-key value in attachment export.csv",
    ),
    ("category-miss", "findings: {categories: [secret]}", evidence(CARD), OUT, None),
    (
        "any-finding",
        "findings: {}",
        evidence(CARD_MEDIUM),
        OUT,
        "1 medium-confidence credit-card value in attachment export.csv",
    ),
    ("count-miss", "findings: {detectors: [credit-card], min_count: 3}", evidence(*cards(2)), OUT, None),
    (
        "count-hit",
        "findings: {detectors: [credit-card], min_count: 3}",
        evidence(*cards(3, distinct=False)),
        OUT,
        "3 high-confidence credit-card values in attachment export.csv",
    ),
    (
        "distinct-miss",
        "findings: {detectors: [credit-card], min_distinct: 3}",
        evidence(*cards(5, distinct=False)),
        OUT,
        None,
    ),
    (
        "distinct-hit",
        "findings: {detectors: [credit-card], min_distinct: 3}",
        evidence(*cards(3)),
        OUT,
        "3 distinct high-confidence credit-card values in attachment export.csv",
    ),
    (
        "per-item-across-parts",
        "findings: {detectors: [credit-card], min_count: 3}",
        evidence(*cards(2, location="a.csv"), *cards(2, location="b.csv")),
        CLI,
        "4 high-confidence credit-card values in a.csv and b.csv",
    ),
    (
        "per-item-many-parts",
        "findings: {detectors: [credit-card]}",
        evidence(*cards(1, location="a.csv"), *cards(1, location="b.csv"), *cards(1, location="c.csv")),
        CLI,
        "3 high-confidence credit-card values in 3 parts",
    ),
    (
        "per-part-miss",
        "findings: {detectors: [credit-card], min_count: 3, per: part}",
        evidence(*cards(2, location="a.csv"), *cards(2, location="b.csv")),
        CLI,
        None,
    ),
    (
        "per-part-hit",
        "findings: {detectors: [credit-card], min_count: 3, per: part}",
        evidence(*cards(1, location="a.csv"), *cards(3, location="b.csv")),
        CLI,
        "3 high-confidence credit-card values in b.csv",
    ),
    (
        "glob-and-mixed-detectors",
        "findings: {detectors: ['us-*'], min_distinct: 2}",
        evidence(finding("us-ssn"), finding("us-itin")),
        OUT,
        "2 distinct high-confidence us-itin/us-ssn values in attachment export.csv",
    ),
    (
        "attribute-min-hit",
        "findings: {detectors: [customer-list], attributes: {rows: {min: 100}}}",
        evidence(finding("customer-list", "crm", count=150, rows=150)),
        OUT,
        "150 high-confidence customer-list values in attachment export.csv",
    ),
    (
        "attribute-min-miss",
        "findings: {detectors: [customer-list], attributes: {rows: {min: 100}}}",
        evidence(finding("customer-list", "crm", count=50, rows=50)),
        OUT,
        None,
    ),
    (
        "attribute-equals",
        "findings: {attributes: {system: [salesforce, hubspot]}}",
        evidence(finding("crm-export-header", "crm", system="HubSpot")),
        OUT,
        "1 high-confidence crm-export-header value in attachment export.csv",
    ),
    ("attribute-absent", "findings: {attributes: {system: salesforce}}", evidence(CARD), OUT, None),
    # edm
    (
        "edm-hit",
        "edm: {index: customers, min_records: 10, min_columns: 2}",
        evidence(finding("edm:customers", "crm", records=12, columns=3)),
        OUT,
        "12 known customer records from EDM index customers (up to 3 columns) in attachment export.csv",
    ),
    (
        "edm-few-columns",
        "edm: {index: customers, min_records: 10, min_columns: 2}",
        evidence(finding("edm:customers", "crm", records=12, columns=1)),
        OUT,
        None,
    ),
    (
        "edm-records-with-enough-columns",
        "edm: {index: customers, min_records: 10, min_columns: 2}",
        evidence(finding("edm:customers", "crm", records=12, columns=2, records_min_columns_2=4)),
        OUT,
        None,
    ),
    (
        "edm-counts-only-records-with-enough-columns",
        "edm: {index: customers, min_records: 4, min_columns: 2}",
        evidence(finding("edm:customers", "crm", records=12, columns=3, records_min_columns_2=4)),
        OUT,
        "4 known customer records from EDM index customers (up to 3 columns) in attachment export.csv",
    ),
    (
        "edm-other-index",
        "edm: {index: customers}",
        evidence(finding("edm:staff", "crm", records=3, columns=2)),
        OUT,
        None,
    ),
    (
        "edm-any-index-summed",
        "edm: {min_records: 5}",
        evidence(
            finding("edm:a", "crm", records=3, columns=2), finding("edm:b", "crm", records=2, columns=2)
        ),
        OUT,
        "5 known customer records from EDM index a/b (up to 2 columns) in attachment export.csv",
    ),
    # crm
    (
        "crm-header",
        "crm: {export_header: true, systems: [salesforce]}",
        evidence(finding("crm-export-header", "crm", system="Salesforce")),
        OUT,
        "Salesforce CRM export header in attachment export.csv",
    ),
    (
        "crm-header-other-system",
        "crm: {export_header: true, systems: [salesforce]}",
        evidence(finding("crm-export-header", "crm", system="HubSpot")),
        OUT,
        None,
    ),
    (
        "crm-rows",
        "crm: {min_rows: 100}",
        evidence(finding("customer-list", "crm", count=250, rows=250)),
        OUT,
        "customer list with 250 rows of personal data in attachment export.csv",
    ),
    (
        "crm-rows-miss",
        "crm: {min_rows: 100}",
        evidence(finding("customer-list", "crm", count=20, rows=20)),
        OUT,
        None,
    ),
    (
        "crm-both",
        "crm: {export_header: true, min_rows: 10}",
        evidence(
            finding("crm-export-header", "crm", system="HubSpot"), finding("customer-list", "crm", rows=40)
        ),
        OUT,
        "HubSpot CRM export header in attachment export.csv, "
        "customer list with 40 rows of personal data in attachment export.csv",
    ),
    # channel, sender, recipients, external, outbound, client
    ("channel-hit", "channel: smtp", evidence(), OUT, "via smtp"),
    ("channel-miss", "channel: [http, cli]", evidence(), OUT, None),
    (
        "sender-domain",
        "sender: {domains: [corp.example]}",
        evidence(),
        mail("bob@partner.org", sender="Alice@Sales.Corp.Example"),
        "from sales.corp.example",
    ),
    ("sender-address", "sender: {addresses: [ceo@corp.example]}", evidence(), OUT, None),
    ("sender-none", "sender: {domains: [corp.example]}", evidence(), HTTP, None),
    ("recipient-domain", "recipients: {domains: [partner.org]}", evidence(), MIXED, "to partner.org"),
    ("recipient-every-miss", "recipients: {domains: [partner.org], every: true}", evidence(), MIXED, None),
    (
        "recipient-address",
        "recipients: {addresses: [bob@partner.org], every: true}",
        evidence(),
        mail("<Bob@Partner.org>"),
        "to partner.org",
    ),
    ("external-out", "external: true", evidence(), OUT, "to external domain partner.org"),
    (
        "external-two-domains",
        "external: true",
        evidence(),
        mail("a@x.org", "b@y.org", "c@corp.example"),
        "to external domains x.org, y.org",
    ),
    ("external-mixed", "external: true", evidence(), MIXED, "to external domain partner.org"),
    ("external-internal", "external: true", evidence(), IN, None),
    ("external-subdomain-internal", "external: true", evidence(), mail("d@eu.corp.example"), None),
    ("external-http", "external: true", evidence(), HTTP, None),
    ("internal-only", "external: false", evidence(), IN, "to internal recipients only"),
    ("internal-mixed", "external: false", evidence(), MIXED, None),
    ("internal-http", "external: false", evidence(), HTTP, None),
    ("outbound-http", "outbound: true", evidence(), HTTP, "via http (destination not known)"),
    ("outbound-cli", "outbound: true", evidence(), CLI, "via cli (destination not known)"),
    ("outbound-mail", "outbound: true", evidence(), MIXED, "to external domain partner.org"),
    ("outbound-internal", "outbound: true", evidence(), IN, None),
    ("inbound-internal", "outbound: false", evidence(), IN, "to internal recipients only"),
    ("inbound-http", "outbound: false", evidence(), HTTP, None),
    ("client-hit", "client: ['share-*']", evidence(), HTTP, "from client share-gateway"),
    ("client-miss", "client: [crm-sync]", evidence(), HTTP, None),
    # parts, size, flags
    (
        "part-extension",
        "parts: {extensions: [csv, .tsv]}",
        evidence(parts=(CSV,)),
        OUT,
        "attachment export.csv (text/csv)",
    ),
    (
        "part-type",
        "parts: {types: ['application/*']}",
        evidence(parts=(CSV, ZIP_ENCRYPTED)),
        OUT,
        "attachment secret.zip (application/zip)",
    ),
    (
        "part-name",
        "parts: {names: ['id_*']}",
        evidence(parts=(KEY_FILE,)),
        OUT,
        "attachment id_rsa.key (text/plain)",
    ),
    ("part-name-miss", "parts: {names: ['*.pem']}", evidence(parts=(KEY_FILE,)), OUT, None),
    (
        "part-flag-excluded-type",
        "parts: {flags: [unsupported], exclude_types: ['image/*']}",
        evidence(parts=(PNG_UNSUPPORTED,)),
        OUT,
        None,
    ),
    (
        "part-flag-other-type",
        "parts: {flags: [unsupported], exclude_types: ['image/*']}",
        evidence(parts=(PNG_UNSUPPORTED, BLOB_UNSUPPORTED)),
        OUT,
        "attachment data.bin (application/x-foo) unsupported",
    ),
    ("size-hit", "size: {min: 10MB}", evidence(size=20 * 1024 * 1024), OUT, "item of 20971520 bytes"),
    ("size-miss", "size: {min: 10MB, max: 1GB}", evidence(size=1000), OUT, None),
    ("size-max", "size: {max: 2048}", evidence(size=1000), OUT, "item of 1000 bytes"),
    (
        "flag-encrypted",
        "flags: [encrypted]",
        evidence(parts=(CSV, ZIP_ENCRYPTED)),
        OUT,
        "encrypted content in attachment secret.zip",
    ),
    (
        "flag-limit-glob",
        "flags: ['limit:*']",
        evidence(parts=(RATIO,)),
        CLI,
        "limit:ratio content in bomb.zip",
    ),
    (
        "flag-item-level",
        "flags: ['limit:time']",
        Evidence("big.txt", 10, (part("big.txt", "text/plain"),), (), ("limit:time",)),
        CLI,
        "item flagged limit:time",
    ),
    ("flag-miss", "flags: [corrupt]", evidence(parts=(ZIP_ENCRYPTED,)), OUT, None),
    # combinations
    (
        "implicit-all",
        "{outbound: true, findings: {detectors: [credit-card]}}",
        evidence(CARD),
        OUT,
        "1 high-confidence credit-card value in attachment export.csv to external domain partner.org",
    ),
    ("all-miss", "all: [{outbound: true}, {findings: {detectors: [credit-card]}}]", evidence(CARD), IN, None),
    (
        "any-first",
        "any: [{channel: http}, {external: true}]",
        evidence(),
        OUT,
        "to external domain partner.org",
    ),
    ("any-miss", "any: [{channel: http}, {external: false}]", evidence(), OUT, None),
    # A clean item skips only the rules that cannot hold without findings (needs_findings):
    (
        "any-findings-or-external-clean",
        "any: [{findings: {detectors: [credit-card]}}, {external: true}]",
        evidence(),
        OUT,
        "to external domain partner.org",
    ),
    (
        "not-findings-clean",
        "not: {findings: {detectors: [credit-card]}}",
        evidence(),
        OUT,
        "the rule's description",
    ),
    (
        "all-findings-clean",
        "all: [{findings: {detectors: [credit-card]}}, {external: true}]",
        evidence(),
        OUT,
        None,
    ),
    ("not-hit", "not: {channel: http}", evidence(), OUT, "the rule's description"),
    ("not-miss", "not: {channel: smtp}", evidence(), OUT, None),
]


@pytest.mark.parametrize(
    ("when", "item", "context", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_condition(
    tmp_path: Path, when: str, item: Evidence, context: ScanContext, expected: str | None
) -> None:
    text = f"""
    rules:
      - id: r
        description: the rule's description
        action: alert
        when:
    {textwrap.indent(when, " " * 10)}
    """
    policies = policy_from(tmp_path, p=text)
    verdict = policies.decide(item, context)
    if expected is None:
        assert verdict.rules == ()
    else:
        assert [(r.rule_id, r.explanation) for r in verdict.rules] == [("r", expected)]


def test_unless_suppresses_a_match(tmp_path: Path) -> None:
    policies = policy_from(
        tmp_path,
        p="""
        rules:
          - id: r
            action: block
            when: {findings: {detectors: [credit-card]}}
            unless: {recipients: {domains: [acquirer.example]}}
        """,
    )
    assert policies.decide(evidence(CARD), mail("x@acquirer.example")).rules == ()
    assert [r.rule_id for r in policies.decide(evidence(CARD), OUT).rules] == ["r"]
