"""The shipped packs on real items through the whole pipeline (extract, detect, decide)."""

from __future__ import annotations

import csv
import io
from email.message import EmailMessage
from pathlib import Path

import pytest
from faker import Faker

from dlp.config import Settings
from dlp.model import Action, Item, ScanContext
from dlp.pipeline import Scanner
from tests.policy.helpers import INTERNAL

POLICIES = Path(__file__).resolve().parents[2] / "policies"
# Luhn-valid numbers that are not published test cards.
CARDS = (
    "4666 1760 3137 2159",
    "4010 9281 5901 3962",
    "4485 2538 8853 9336",
    "4881 8174 1433 3776",
    "4760 2077 6426 5651",
)
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + "Qk9" * 30 + "\n-----END RSA PRIVATE KEY-----\n"
)
SIGNATURE = "Best regards,\nAlice Smith\nalice.smith@corp.example | +1 415 555 0199\n"


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Scanner:
    """The scanner a new installation runs: built-in detectors and every shipped pack."""
    state = tmp_path_factory.mktemp("state")
    return Scanner.from_settings(Settings(state_dir=state, policies=(POLICIES,), internal_domains=INTERNAL))


def message(body: str, attachments: dict[str, tuple[bytes, str]] | None = None) -> Item:
    """A real MIME message with a text body and attachments (name -> data, type)."""
    mail = EmailMessage()
    mail["From"] = "alice@corp.example"
    mail["To"] = "bob@partner.org"
    mail["Subject"] = "As discussed"
    mail.set_content(body)
    for name, (data, mime) in (attachments or {}).items():
        maintype, subtype = mime.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return Item(data=mail.as_bytes(), name="message.eml")


def customer_export(rows: int) -> bytes:
    """A CRM-style CSV export of fake customers."""
    fake = Faker("en_US")
    fake.seed_instance(4)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["First Name", "Last Name", "Email", "Phone", "Account Name"])
    for _ in range(rows):
        writer.writerow(
            [fake.first_name(), fake.last_name(), fake.email(), fake.phone_number(), fake.company()]
        )
    return out.getvalue().encode()


def locked_pdf() -> bytes:
    """A password-protected PDF (reportlab, then pypdf AES-128)."""
    from pypdf import PdfReader, PdfWriter
    from reportlab.pdfgen import canvas

    plain = io.BytesIO()
    pdf = canvas.Canvas(plain)
    pdf.drawString(72, 720, "Quarterly figures")
    pdf.save()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(plain.getvalue())))
    writer.encrypt("user-secret", "owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mail_to(*recipients: str) -> ScanContext:
    """An SMTP context from alice@corp.example."""
    return ScanContext("smtp", "alice@corp.example", recipients, internal_domains=INTERNAL)


OUT = mail_to("bob@partner.org")
CARD_BODY = "Card numbers for the refunds:\n" + "\n".join(CARDS) + "\n\n" + SIGNATURE

CASES = [
    (
        "cards-out",
        message(CARD_BODY),
        OUT,
        Action.BLOCK,
        "pci-cards-bulk-outbound",
        "5 distinct high-confidence credit-card values in message body to external domain partner.org",
    ),
    (
        "cards-internal",
        message(CARD_BODY),
        mail_to("carol@corp.example"),
        Action.ALERT,
        "pci-card-internal",
        "5 high-confidence credit-card values in message body to internal recipients only",
    ),
    (
        "test-card-out",
        message("Use the test card 4111 1111 1111 1111 in staging.\n" + SIGNATURE),
        OUT,
        Action.ALLOW,
        None,
        None,
    ),
    ("signature-only-out", message("See you on Monday.\n\n" + SIGNATURE), OUT, Action.ALLOW, None, None),
    (
        "customer-export-out",
        message("Here is the list.\n", {"export.csv": (customer_export(150), "text/csv")}),
        OUT,
        Action.BLOCK,
        "crm-customer-list-bulk-outbound",
        "customer list with 150 rows of personal data in attachment export.csv"
        " to external domain partner.org",
    ),
    (
        "locked-pdf-out",
        message("Figures attached.\n", {"q3.pdf": (locked_pdf(), "application/pdf")}),
        OUT,
        Action.QUARANTINE,
        "default-unscannable-outbound",
        "encrypted content in attachment q3.pdf to external domain partner.org",
    ),
    (
        "private-key-upload",
        Item.from_text("deploy key:\n" + PRIVATE_KEY, name="notes.txt"),
        ScanContext("http", client="share-gateway", internal_domains=INTERNAL),
        Action.BLOCK,
        "secrets-outbound",
        "1 high-confidence private-key value in notes.txt via http (destination not known)",
    ),
]


@pytest.mark.parametrize(
    ("item", "context", "action", "first_rule", "explanation"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_real_items(
    scanner: Scanner,
    item: Item,
    context: ScanContext,
    action: Action,
    first_rule: str | None,
    explanation: str | None,
) -> None:
    result = scanner.scan(item, context)
    enforced = [r for r in result.verdict.rules if r.mode == "enforce"]
    assert result.action is action
    if first_rule is None:
        assert enforced == []
    else:
        assert (enforced[0].rule_id, enforced[0].explanation) == (first_rule, explanation)
    assert result.verdict.policy_version == scanner.policies.version
