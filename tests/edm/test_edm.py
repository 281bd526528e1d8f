"""Exact data match: a Faker CRM table indexed as hashes, its records found in text."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st

from dlp.detect import Candidate, Engine
from dlp.edm import EdmIndex, EdmMatcher, build_index, parse_columns
from dlp.edm.index import EdmError
from dlp.edm.normalise import infer_kind, normalise
from dlp.model import Action, Finding, Item, Part, ScanContext, Table
from dlp.pipeline import Scanner, builtin_folder
from dlp.policy import PolicySet

SECRET = b"s" * 32
HASH_KEY = b"h" * 32
COLUMNS = ["Full Name", "Email", "Phone"]


def _records(seed: int, count: int) -> list[dict[str, str]]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    out = []
    for i in range(count):
        first, last = fake.first_name(), fake.last_name()
        area, exchange = fake.random_int(201, 989), fake.random_int(200, 999)
        line = fake.random_int(1000, 9999)
        out.append(
            {
                "Record ID": str(1000 + i),
                "Full Name": f"{first} {last}",
                "Email": f"{first}.{last}{i}@{fake.free_email_domain()}".lower(),
                "Phone": f"({area}) {exchange}-{line}",
                "City": fake.city(),
            }
        )
    return out


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_folders([builtin_folder("detectors")], hash_key=HASH_KEY)


def _match(engine: Engine, matcher: EdmMatcher, part: Part) -> list[Finding]:
    """What the pipeline does: the engine collects candidates, the matcher looks them up."""
    values: list[Candidate] = []
    engine.detect(part, values, matcher.run_counts)
    return matcher.detect(part, values)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, str]], EdmMatcher, Path]:
    folder = tmp_path_factory.mktemp("edm")
    rows = _records(seed=7, count=2000)
    source = folder / "contacts.csv"
    _write_csv(source, rows)
    stats = build_index(source, "crm", parse_columns(",".join(COLUMNS)), SECRET, folder / "index")
    assert stats.records == 2000 and stats.values == 6000
    return rows, EdmMatcher.load(folder / "index", SECRET, HASH_KEY), stats.path


def _prose(rows: list[dict[str, str]]) -> str:
    lines = ["Hi team, here are the contacts we discussed for the renewal campaign:", ""]
    for row in rows:
        lines.append(f"- {row['Full Name']} can be reached at {row['Email']} or {row['Phone']}.")
    lines.append("\nThanks, Dana")
    return "\n".join(lines)


def _csv_part(rows: list[dict[str, str]]) -> Part:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["Name", "E-mail", "Mobile"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({"Name": row["Full Name"], "E-mail": row["Email"].upper(), "Mobile": row["Phone"]})
    text = buffer.getvalue()
    return Part(
        "message/attachment[1]:leads.csv",
        "text/csv",
        len(text),
        text,
        table=Table(",", ("Name", "E-mail", "Mobile")),
    )


def test_fifty_records_in_prose_are_found(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path], engine: Engine
) -> None:
    rows, matcher, _ = crm
    text = _prose(rows[100:150])
    [finding] = _match(engine, matcher, Part("message/body[1]", "text/plain", len(text), text))
    assert finding.detector == "edm:crm"
    assert finding.count == 50
    assert finding.attributes["records"] == 50
    assert finding.attributes["records_min_columns_3"] == 50
    assert finding.attributes["columns"] == 3
    assert finding.attributes["column_names"] == "Full Name+Email+Phone"
    assert finding.preview == "50 records"
    assert "50 records of index crm" in finding.explanation


def test_fifty_records_in_a_csv_attachment_are_found(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path], engine: Engine
) -> None:
    rows, matcher, _ = crm
    [finding] = _match(engine, matcher, _csv_part(rows[500:550]))
    assert finding.count == 50
    assert finding.attributes["records_min_columns_2"] == 50


def test_unknown_valid_looking_records_match_nothing(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path], engine: Engine
) -> None:
    _, matcher, _ = crm
    strangers = _records(seed=99, count=50)
    text = _prose(strangers)
    assert _match(engine, matcher, Part("message/body[1]", "text/plain", len(text), text)) == []
    assert _match(engine, matcher, _csv_part(strangers)) == []


def test_a_name_alone_is_not_a_record(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path], engine: Engine
) -> None:
    rows, matcher, _ = crm
    text = "\n".join(f"Call 555-0100 and ask for {row['Full Name']}." for row in rows[:10])
    assert _match(engine, matcher, Part("body", "text/plain", len(text), text)) == []


def test_index_holds_no_plaintext(crm: tuple[list[dict[str, str]], EdmMatcher, Path]) -> None:
    rows, _, path = crm
    blob = path.read_bytes()
    for row in rows:
        for column in COLUMNS:
            value = row[column]
            for variant in {value, value.lower(), normalise(infer_kind(column), value) or value}:
                assert variant.encode() not in blob
    assert path.stat().st_mode & 0o777 == 0o600


def test_refresh_replaces_the_index_atomically(tmp_path: Path) -> None:
    rows = _records(seed=3, count=20)
    source = tmp_path / "a.csv"
    _write_csv(source, rows)
    build_index(source, "crm", parse_columns("Email"), SECRET, tmp_path / "idx")
    _write_csv(source, rows[:5])
    stats = build_index(source, "crm", parse_columns("Email"), SECRET, tmp_path / "idx")
    assert stats.records == 5
    assert EdmIndex(stats.path).meta["records"] == 5
    assert [p.name for p in (tmp_path / "idx").iterdir()] == ["crm.edm"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("Email:colour", "unknown kind"), ("Nope", "no column 'Nope'"), (",", "names no column")],
)
def test_bad_columns_are_explained(tmp_path: Path, spec: str, message: str) -> None:
    source = tmp_path / "a.csv"
    _write_csv(source, _records(seed=1, count=2))
    with pytest.raises(EdmError, match=message):
        build_index(source, "crm", parse_columns(spec), SECRET, tmp_path / "idx")


@pytest.mark.parametrize(
    ("kind", "a", "b"),
    [
        ("email", "Jane.Doe@Example.COM ", "<jane.doe@example.com>"),
        ("phone", "(415) 555-0100", "+1 415 555 0100"),
        ("phone", "+44 20 7946 0958", "0044 20 7946 0958"),
        ("number", "4111-1111-1111-1111", "4111 1111 1111 1111"),
        ("name", "Jane   DOE", "jane doe"),
    ],
)
def test_normalisation_folds_formats(kind: str, a: str, b: str) -> None:
    assert normalise(kind, a) == normalise(kind, b) is not None


@given(st.text(max_size=40), st.sampled_from(["email", "phone", "number", "name", "text"]))
def test_normalise_never_raises(value: str, kind: str) -> None:
    result = normalise(kind, value)
    assert result is None or isinstance(result, str)


def test_cli_builds_an_index(tmp_path: Path) -> None:
    source = tmp_path / "contacts.csv"
    _write_csv(source, _records(seed=5, count=30))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlp",
            "edm",
            "index",
            str(source),
            "--name",
            "crm",
            "--columns",
            "Email,Phone",
        ],
        capture_output=True,
        text=True,
        env={"DLP_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("indexed 30 records (60 values) as 'crm'")
    assert (tmp_path / "state" / "edm" / "crm.edm").is_file()
    assert (tmp_path / "state" / "keys" / "edm.key").stat().st_mode & 0o777 == 0o600


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["Contact", "Work Email", "Mobile", "City"])
    for row in rows:
        sheet.append([row["Full Name"], row["Email"], row["Phone"], row["City"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _mail_with(attachment: bytes) -> bytes:
    message = EmailMessage()
    message["Subject"] = "Leads for the partner campaign"
    message["From"] = "Dana Reyes <dana@corp.example>"
    message["To"] = "partner@agency.example"
    message.set_content("Hi, the leads are attached.\n")
    message.add_attachment(
        attachment,
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="leads.xlsx",
    )
    return message.as_bytes()


@pytest.mark.parametrize(("offset", "expected"), [(300, 50), (None, 0)])
def test_records_in_an_xlsx_attachment_are_found_by_the_scanner(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path], engine: Engine, offset: int | None, expected: int
) -> None:
    rows, matcher, _ = crm
    carried = rows[offset : offset + 50] if offset is not None else _records(seed=99, count=50)
    policies = PolicySet.load([builtin_folder("policies")], internal_domains=("corp.example",))
    scanner = Scanner(engine=engine, policies=policies, edm=matcher)
    context = ScanContext(
        channel="smtp",
        sender="dana@corp.example",
        recipients=("partner@agency.example",),
        internal_domains=("corp.example",),
    )
    result = scanner.scan(Item(data=_mail_with(_xlsx(carried)), name="message.eml"), context)
    edm = [
        (f.detector, f.count, f.attributes["column_names"]) for f in result.findings if f.category == "crm"
    ]
    rules = [r.rule_id for r in result.verdict.rules if r.rule_id.startswith("crm-known-customers")]
    if expected:
        assert edm == [("edm:crm", 50, "Full Name+Email+Phone")]
        assert rules == ["crm-known-customers-bulk-outbound", "crm-known-customers-outbound"]
        assert result.verdict.action == Action.BLOCK
    else:
        assert edm == []
        assert rules == []


@pytest.fixture(scope="module")
def phones(tmp_path_factory: pytest.TempPathFactory) -> EdmMatcher:
    folder = tmp_path_factory.mktemp("phones")
    source = folder / "phones.csv"
    source.write_text("Email,Phone\nann@corp.example,(415) 555-0100\nbo@corp.example,+44 20 7946 0958\n")
    build_index(source, "phones", parse_columns("Email,Phone"), SECRET, folder / "index")
    return EdmMatcher.load(folder / "index", SECRET, HASH_KEY)


@pytest.mark.parametrize(
    ("text", "records"),
    [
        ("Call +1 415 555 0100 today.", 1),
        ("Call (415) 555-0100 today.", 1),
        ("Call 415.555.0100 today.", 1),
        ("Call 1-415-555-0100 today.", 1),
        ("Ref 88412 415 555 0100 today.", 1),
        ("UK office +44 20 7946 0958.", 1),
        ("UK office 0044 20 7946 0958.", 1),
        ("Mail ANN@corp.example and +44 20 7946 0958.", 2),
        ("Call (415) 555-0101 today.", 0),
        ("Order 4155550100123 shipped.", 0),
    ],
)
def test_digit_runs_of_the_engine_are_phone_candidates(
    phones: EdmMatcher, engine: Engine, text: str, records: int
) -> None:
    found = _match(engine, phones, Part("body", "text/plain", len(text), text))
    assert [f.count for f in found] == ([records] if records else [])


@pytest.mark.parametrize(("shared", "records"), [(64, 64), (65, 0)])
def test_a_value_shared_by_too_many_records_identifies_nobody(
    tmp_path: Path, engine: Engine, shared: int, records: int
) -> None:
    source = tmp_path / "switchboard.csv"
    lines = [f"staff{i}@corp.example,(415) 555-0100" for i in range(shared)]
    source.write_text("Email,Phone\n" + "\n".join(lines) + "\n")
    build_index(source, "staff", parse_columns("Email,Phone"), SECRET, tmp_path / "idx")
    matcher = EdmMatcher.load(tmp_path / "idx", SECRET, HASH_KEY)
    text = "Reception: (415) 555-0100."
    found = _match(engine, matcher, Part("body", "text/plain", len(text), text))
    assert [f.count for f in found] == ([records] if records else [])
