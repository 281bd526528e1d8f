"""Loader errors name file, line and field; every error is reported, not only the first."""

from __future__ import annotations

import pickle
import re
import textwrap
from pathlib import Path

import pytest

from dlp.errors import PolicyError
from dlp.pipeline import builtin_folder
from dlp.policy import PolicySet, check_folders

GOOD_RULE = "  - id: ok\n    action: alert\n    when: {channel: smtp}\n"

CASES = [
    (
        "unknown-rule-key",
        "rules:\n  - id: r\n    colour: red\n    action: block\n    when: {channel: smtp}\n",
        3,
        "rules[0].colour",
        "unknown key",
    ),
    ("unknown-top-key", "rule:\n  - id: r\n", 1, "rule", "unknown key"),
    ("missing-rules", "name: x\n", 1, None, "missing required key 'rules'"),
    (
        "bad-action",
        "rules:\n  - id: r\n    action: delete\n    when: {channel: smtp}\n",
        3,
        "rules[0].action",
        "'delete' is not one of: block, quarantine, alert, allow",
    ),
    (
        "bad-mode",
        "rules:\n  - id: r\n    mode: dry-run\n    action: block\n    when: {channel: smtp}\n",
        3,
        "rules[0].mode",
        "is not one of: enforce, monitor",
    ),
    (
        "bad-severity",
        "rules:\n  - id: r\n    severity: 5\n    action: block\n    when: {channel: smtp}\n",
        3,
        "rules[0].severity",
        "5 is not one of: low, medium, high, critical",
    ),
    (
        "bad-id",
        "rules:\n  - id: Card Rule\n    action: block\n    when: {channel: smtp}\n",
        2,
        "rules[0].id",
        "is not a rule id",
    ),
    ("missing-when", "rules:\n  - id: r\n    action: block\n", 2, "rules[0]", "missing required key 'when'"),
    (
        "unknown-condition",
        "rules:\n  - id: r\n    action: block\n    when:\n      detector: credit-card\n",
        5,
        "rules[0].when.detector",
        "unknown key",
    ),
    (
        "bad-confidence",
        "rules:\n  - id: r\n    action: block\n    when:\n      findings:\n        min_confidence: certain\n",
        6,
        "rules[0].when.findings.min_confidence",
        "'certain' is not one of: low, medium, high",
    ),
    (
        "bad-count",
        "rules:\n  - id: r\n    action: block\n    when:\n      findings:\n        min_count: three\n",
        6,
        "rules[0].when.findings.min_count",
        "expected a whole number >= 1",
    ),
    (
        "bad-per",
        "rules:\n  - id: r\n    action: block\n    when:\n      findings: {per: message}\n",
        5,
        "rules[0].when.findings.per",
        "is not one of: item, part",
    ),
    (
        "bad-detector-id",
        "rules:\n  - id: r\n    action: block\n    when:\n      findings: {detectors: [Credit Card]}\n",
        5,
        "rules[0].when.findings.detectors",
        "is not a detector id",
    ),
    (
        "nested-bad-condition",
        "rules:\n  - id: r\n    action: block\n    when:\n      any:\n"
        "        - channel: smtp\n        - flags: [exploded]\n",
        7,
        "rules[0].when.any[1].flags",
        "unknown flag 'exploded'",
    ),
    (
        "bad-channel",
        "rules:\n  - id: r\n    action: block\n    when: {channel: ftp}\n",
        4,
        "rules[0].when.channel",
        "unknown channel 'ftp'",
    ),
    (
        "bad-size",
        "rules:\n  - id: r\n    action: block\n    when: {size: {min: ten}}\n",
        4,
        "rules[0].when.size.min",
        "expected a size in bytes",
    ),
    (
        "bad-external",
        "rules:\n  - id: r\n    action: block\n    when: {external: maybe}\n",
        4,
        "rules[0].when.external",
        "expected true or false",
    ),
    (
        "empty-any",
        "rules:\n  - id: r\n    action: block\n    when: {any: []}\n",
        4,
        "rules[0].when.any",
        "expected a non-empty list of conditions",
    ),
    (
        "crm-needs-a-signal",
        "rules:\n  - id: r\n    action: block\n    when: {crm: {}}\n",
        4,
        "rules[0].when.crm",
        "give 'export_header: true' and/or 'min_rows'",
    ),
    (
        "edm-bad-records",
        "rules:\n  - id: r\n    action: block\n    when: {edm: {min_records: 0}}\n",
        4,
        "rules[0].when.edm.min_records",
        "expected a whole number >= 1",
    ),
    (
        "duplicate-key",
        "rules:\n  - id: r\n    action: block\n    action: alert\n    when: {channel: smtp}\n",
        4,
        "rules[0].action",
        "duplicate key",
    ),
    (
        "message-multiline",
        'rules:\n  - id: r\n    action: block\n    message: "caf\\u00e9"\n    when: {channel: smtp}\n',
        4,
        "rules[0].message",
        "one line of printable ASCII",
    ),
    ("bad-yaml", "rules:\n  - id: r\n    action: [block\n", 4, None, "invalid YAML"),
    ("empty-file", "", 1, None, "the file is empty"),
    ("not-a-mapping", "- id: r\n", 1, None, "expected a mapping, got a list"),
    (
        "bad-deadline",
        "deadlines: {gdpr: soon}\nrules: []\n",
        1,
        "deadlines.gdpr",
        "expected a whole number >= 1",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_names_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, message: str
) -> None:
    (tmp_path / "pack.yaml").write_text(text, "utf-8")
    with pytest.raises(PolicyError) as caught:
        PolicySet.load([tmp_path])
    error = caught.value
    assert (Path(error.file).name, error.line, error.field) == ("pack.yaml", line, field)
    assert message in error.message
    assert str(error).startswith(f"{tmp_path / 'pack.yaml'}:{line}:")


def test_every_error_of_every_file_is_collected(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        textwrap.dedent(
            """\
            rules:
              - id: one
                action: explode
                when: {channel: smtp}
              - id: two
                action: block
                when: {flags: [melted]}
            """
        )
    )
    (tmp_path / "b.yaml").write_text(
        "rules:\n" + GOOD_RULE + "  - id: one\n    action: block\n    when: {}\n"
    )
    (tmp_path / "c.yaml").write_text("rules:\n  - id: one\n    action: block\n    when: {channel: smtp}\n")
    (tmp_path / "d.yaml").write_text("rules:\n  - id: one\n    action: alert\n    when: {channel: http}\n")
    (tmp_path / "notes.txt").write_text("not a policy")
    policies, errors = check_folders([tmp_path])
    assert policies is None
    assert [(Path(e.file).name, e.line, e.field) for e in errors] == [
        ("a.yaml", 3, "rules[0].action"),
        ("a.yaml", 7, "rules[1].when.flags"),
        ("b.yaml", 7, "rules[1].when"),
        ("d.yaml", 2, "id"),
    ]
    assert "duplicate rule id 'one'" in errors[-1].message


@pytest.mark.parametrize(
    ("make", "message"),
    [("missing", "policy folder does not exist"), ("empty", "no *.yaml policy files found")],
)
def test_folder_problems(tmp_path: Path, make: str, message: str) -> None:
    folder = tmp_path / "policies"
    if make == "empty":
        folder.mkdir()
    with pytest.raises(PolicyError, match=re.escape(message)):
        PolicySet.load([folder])


def test_a_policy_set_crosses_to_a_worker_process_intact() -> None:
    shipped = PolicySet.load([builtin_folder("policies")], internal_domains=("example.com",))
    copy = pickle.loads(pickle.dumps(shipped))
    assert (copy.version, copy.internal_domains, dict(copy.deadlines)) == (
        shipped.version,
        shipped.internal_domains,
        dict(shipped.deadlines),
    )
    assert [rule.id for rule in copy.rules] == [rule.id for rule in shipped.rules]
