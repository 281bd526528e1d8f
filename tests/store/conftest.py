"""Store fixtures: a private PostgreSQL cluster for the session (skipped only when the
PostgreSQL binaries are not installed) and a fresh schema per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.pg_cluster import Cluster, find_bindir, private_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One private cluster on a loopback port for every PostgreSQL test of the session."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin "
            "(install Debian's postgresql package: bash scripts/test-deps)"
        )
    with private_cluster(bindir) as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A URL whose tables land in a new, empty schema of the private cluster."""
    return pg_cluster.create_schema()
