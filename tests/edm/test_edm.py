"""Exact data match: a Faker CRM table indexed as hashes, its records found in text."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st

from dlp.edm import EdmIndex, EdmMatcher, build_index, parse_columns
from dlp.edm.index import EdmError
from dlp.edm.normalise import infer_kind, normalise
from dlp.model import Part, Table

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


def test_fifty_records_in_prose_are_found(crm: tuple[list[dict[str, str]], EdmMatcher, Path]) -> None:
    rows, matcher, _ = crm
    text = _prose(rows[100:150])
    [finding] = matcher.detect(Part("message/body[1]", "text/plain", len(text), text))
    assert finding.detector == "edm:crm"
    assert finding.count == 50
    assert finding.attributes["records"] == 50
    assert finding.attributes["records_min_columns_3"] == 50
    assert finding.attributes["columns"] == "Full Name+Email+Phone"
    assert finding.preview == "50 records"
    assert "50 records of index crm" in finding.explanation


def test_fifty_records_in_a_csv_attachment_are_found(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path],
) -> None:
    rows, matcher, _ = crm
    [finding] = matcher.detect(_csv_part(rows[500:550]))
    assert finding.count == 50
    assert finding.attributes["records_min_columns_2"] == 50


def test_unknown_valid_looking_records_match_nothing(
    crm: tuple[list[dict[str, str]], EdmMatcher, Path],
) -> None:
    _, matcher, _ = crm
    strangers = _records(seed=99, count=50)
    text = _prose(strangers)
    assert matcher.detect(Part("message/body[1]", "text/plain", len(text), text)) == []
    assert matcher.detect(_csv_part(strangers)) == []


def test_a_name_alone_is_not_a_record(crm: tuple[list[dict[str, str]], EdmMatcher, Path]) -> None:
    rows, matcher, _ = crm
    text = "\n".join(f"Call 555-0100 and ask for {row['Full Name']}." for row in rows[:10])
    assert matcher.detect(Part("body", "text/plain", len(text), text)) == []


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
