"""Properties: any YAML document gives a policy set or located errors, never a crash;
sizes parse as written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dlp.errors import PolicyError
from dlp.policy import check_folders
from dlp.policy.parse import parse_size

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
