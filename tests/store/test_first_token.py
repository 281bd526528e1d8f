"""The first-start token: several replicas racing on one empty store make exactly one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dlp.config import Settings
from dlp.store import Role, Store, TokenInfo, open_store

RACERS = 4


def _race(stores: list[Store]) -> list[tuple[str, TokenInfo] | None]:
    """Every store calls create_first_token at the same moment, each from its own thread."""
    barrier = threading.Barrier(len(stores))
    outcomes: list[tuple[str, TokenInfo] | None] = [None] * len(stores)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = stores[index].create_first_token(Role.ADMIN, "admin")
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    return outcomes


def _sqlite(tmp_path: Path, pg_url: Callable[[], str]) -> Settings:
    return Settings.model_validate({"state_dir": tmp_path / "var"})


def _postgres(tmp_path: Path, pg_url: Callable[[], str]) -> Settings:
    return Settings.model_validate({"state_dir": tmp_path / "var", "store": pg_url()})


@pytest.fixture
def pg_url_factory(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A new empty PostgreSQL schema, asked for only by the PostgreSQL cases."""
    return lambda: str(request.getfixturevalue("pg_url"))


@pytest.mark.parametrize("settings_for", [_sqlite, _postgres], ids=["sqlite", "postgresql"])
def test_replicas_starting_together_create_one_first_token(
    tmp_path: Path, pg_url_factory: Callable[[], str], settings_for: Callable[..., Settings]
) -> None:
    settings = settings_for(tmp_path, pg_url_factory)
    stores = [open_store(settings) for _ in range(RACERS)]
    try:
        for _ in range(3):
            outcomes = _race(stores)
            made = [o for o in outcomes if o is not None]
            assert len(made) == 1
            secret, info = made[0]
            assert stores[0].verify_token(secret) == info
            assert [t.id for t in stores[0].list_tokens() if not t.revoked] == [info.id]
            stores[1].revoke_token(info.id)
        names = [t.name for t in stores[0].list_tokens()]
        assert names[0] == "admin" and len(names) == 3 and len(set(names)) == 3
    finally:
        for store in stores:
            store.close()


def test_no_first_token_while_any_active_token_exists(tmp_path: Path) -> None:
    store = open_store(Settings.model_validate({"state_dir": tmp_path / "var"}))
    try:
        _, scanner = store.create_token(Role.SCANNER, "scanner")
        assert store.create_first_token(Role.ADMIN, "admin") is None
        store.revoke_token(scanner.id)
        created = store.create_first_token(Role.ADMIN, "scanner")
        assert created is not None
        assert (created[1].role, created[1].name.startswith("admin-")) == (Role.ADMIN, True)
    finally:
        store.close()
