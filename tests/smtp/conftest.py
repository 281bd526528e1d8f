"""Fixtures: a next-hop sink and relays on OS-chosen loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dlp.config import Settings, SmtpSettings
from dlp.smtp.relay import Relay
from dlp.store import Store, open_store
from tests.smtp.sink import Sink, start_sink

RelayFactory = Callable[..., Awaitable[Relay]]
INTERNAL_DOMAINS = ("corp.example",)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """A recording next hop on 127.0.0.1."""
    started = await start_sink()
    yield started
    await started.close()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A real SQLite store in a temporary state folder."""
    return open_store(Settings(state_dir=tmp_path / "state"))


def relay_settings(tmp_path: Path, next_hop: str = "maildir:./var/outbox", **smtp: Any) -> Settings:
    """Settings for a test relay: loopback, OS-chosen port, fixed hostname."""
    values: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "next_hop": next_hop,
        "hostname": "relay.test",
        "next_hop_tls": "none",
        "scan": False,
    }
    values.update(smtp)
    return Settings(
        state_dir=tmp_path / "state", internal_domains=INTERNAL_DOMAINS, smtp=SmtpSettings(**values)
    )


@pytest.fixture(scope="session")
def scan_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real pool of two scan workers with the shipped detectors and policy packs."""
    from dlp.workers import ScanPool

    settings = Settings(state_dir=tmp_path_factory.mktemp("pool"), internal_domains=INTERNAL_DOMAINS)
    pool = ScanPool(settings, workers=2)
    pool.warm_up()
    yield pool
    pool.close()


@pytest.fixture
async def make_relay(tmp_path: Path, store: Store) -> AsyncIterator[RelayFactory]:
    """Start relays (stopped at teardown): `await make_relay(next_hop, pool=None, **smtp)`."""
    relays: list[Relay] = []

    async def factory(next_hop: str, pool: Any = None, **smtp: Any) -> Relay:
        relay = Relay(relay_settings(tmp_path, next_hop, **smtp), pool, store)
        await relay.start()
        relays.append(relay)
        return relay

    yield factory
    for relay in relays:
        await relay.stop(0)
