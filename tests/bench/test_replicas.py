"""The scale-out benchmarks' plan: which deployments `--backends` and `--replicas` start."""

from __future__ import annotations

import pytest

from bench.replicas import parse_plan


@pytest.mark.parametrize(
    ("backends", "replicas", "plan"),
    [
        ("sqlite,postgresql", "1,2", [("sqlite", 1), ("postgresql", 1), ("postgresql", 2)]),
        ("postgresql", "2", [("postgresql", 2)]),
        ("sqlite", "1,2,3", [("sqlite", 1)]),
        ("postgresql,sqlite", "3,1", [("postgresql", 3), ("postgresql", 1), ("sqlite", 1)]),
    ],
)
def test_plan(backends: str, replicas: str, plan: list[tuple[str, int]]) -> None:
    assert parse_plan(backends, replicas) == plan


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown backend 'mysql'"):
        parse_plan("sqlite,mysql", "1")
