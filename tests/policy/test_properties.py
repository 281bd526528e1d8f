"""Properties: any YAML document gives a policy set or located errors, never a crash;
sizes parse as written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.errors import PolicyError
from dlp.model import Action, Finding, PartInfo, ScanContext
from dlp.policy import PolicySet, check_folders
from dlp.policy.parse import parse_size
from tests.policy.helpers import INTERNAL, evidence, finding

SHIPPED = PolicySet.load([Path(__file__).resolve().parents[2] / "policies"], internal_domains=INTERNAL)

KEYS = st.sampled_from(
    [
        "rules",
        "id",
        "action",
        "when",
        "unless",
        "findings",
        "detectors",
        "min_count",
        "any",
        "all",
        "not",
        "flags",
        "size",
        "min",
        "crm",
        "edm",
        "external",
        "outbound",
        "parts",
        "mode",
        "severity",
        "x",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.sampled_from(["block", "smtp", "high", "10MB", "limit:*", ""]),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None)
@given(DOCUMENTS)
def test_any_document_loads_or_reports_located_errors(document: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(document), "utf-8")
        policies, errors = check_folders([Path(folder)])
    assert (policies is None) == bool(errors)
    for error in errors:
        assert isinstance(error, PolicyError) and error.file == str(path) and error.message


@settings(max_examples=60)
@given(
    st.integers(0, 10**6),
    st.sampled_from([("", 1), ("B", 1), ("KB", 1024), ("MiB", 1024**2), ("gb", 1024**3)]),
)
def test_sizes_parse_with_binary_units(number: int, unit: tuple[str, int]) -> None:
    suffix, factor = unit
    assert parse_size(f"{number}{suffix}") == number * factor
    assert parse_size(f"{number} {suffix}") == number * factor


DETECTORS = st.sampled_from(
    [
        ("credit-card", "pci"),
        ("us-ssn", "pii"),
        ("email-address", "pii"),
        ("private-key", "secret"),
        ("customer-list", "pii"),
        ("crm-export-header", "crm"),
        ("medical-record-number", "phi"),
        ("icd10-code", "phi"),
        ("edm:customers", "crm"),
    ]
)
FINDINGS = st.builds(
    lambda d, conf, value, count, where: finding(
        d[0], d[1], conf, location=where, value=str(value), count=count, rows=count, records=count, columns=2
    ),
    DETECTORS,
    st.sampled_from(["low", "medium", "high"]),
    st.integers(0, 30),
    st.integers(1, 300),
    st.sampled_from(["message/body[1]", "message/attachment[1]:a.csv", "x.zip/b.csv"]),
)
FLAGS = st.lists(st.sampled_from(["encrypted", "corrupt", "unsupported", "limit:ratio"]), max_size=2)
CONTEXTS = st.one_of(
    st.builds(
        lambda rcpts: ScanContext("smtp", "alice@corp.example", tuple(rcpts), internal_domains=INTERNAL),
        st.lists(st.sampled_from(["a@corp.example", "b@partner.org", "c@partner.example"]), max_size=3),
    ),
    st.builds(lambda client: ScanContext("http", client=client), st.sampled_from([None, "internal-archive"])),
)


@settings(max_examples=80, deadline=None)
@given(st.lists(FINDINGS, max_size=25), FLAGS, CONTEXTS)
def test_shipped_resolution(findings: list[Finding], flags: list[str], context: ScanContext) -> None:
    parts = (PartInfo("message/attachment[2]:x.bin", "application/octet-stream", 10, tuple(flags), "x.bin"),)
    verdict = SHIPPED.decide(evidence(*findings, parts=parts + _parts(findings)), context)
    enforced = [r.action for r in verdict.rules if r.mode == "enforce"]
    expected = Action.ALLOW if Action.ALLOW in enforced else max(enforced, default=Action.ALLOW)
    assert verdict.action is expected
    assert len({r.rule_id for r in verdict.rules}) == len(verdict.rules)
    assert set(verdict.deadlines) <= set(verdict.regulations)
    assert all(r.explanation and "\n" not in r.explanation for r in verdict.rules)
    if verdict.action >= Action.QUARANTINE:
        assert verdict.message is not None


def _parts(findings: list[Finding]) -> tuple[PartInfo, ...]:
    locations = sorted({f.location for f in findings})
    return tuple(PartInfo(loc, "text/plain", 10) for loc in locations)
