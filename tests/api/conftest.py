"""A real uvicorn server on an OS-chosen loopback port, driven by httpx.

`serve(tmp, **settings)` starts the API in a thread (its own event loop) with a real
SQLite store and one token per role, and captures every log line for leak checks.
`StandInScanner` gives deterministic verdicts from markers in the content, so these
tests pin the API's behaviour independently of detector and policy tuning; the
end-to-end tests in test_pipeline.py run the real worker pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dlp.api import create_app
from dlp.api.state import ScanService
from dlp.config import Settings
from dlp.errors import ScanTimeout
from dlp.model import Action, Item, PartInfo, RuleMatch, ScanContext, ScanResult, Verdict, new_id
from dlp.store import Role, Store, open_store
from tests.store.factories import PLANTED_CARD, card_result

BLOCK_MARK = b"BLOCK-ME"
SLOW_MARK = b"SLOW-SCAN"
MONITOR_MARK = b"MONITOR-ME"


def _contains(item: Item, marks: tuple[bytes, ...]) -> set[bytes]:
    found: set[bytes] = set()
    tail = b""
    with item.open() as handle:
        while block := handle.read(1024 * 1024):
            window = tail + block
            found.update(m for m in marks if m in window)
            tail = window[-64:]
    return found


@dataclass
class StandInScanner:
    """Verdicts from markers: the planted card quarantines, BLOCK-ME blocks, SLOW-SCAN
    times out, MONITOR-ME is allowed with a monitor-mode rule, anything else is allowed."""

    contexts: list[ScanContext] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)

    async def scan(self, item: Item, context: ScanContext, timeout: float | None = None) -> ScanResult:
        marks = (PLANTED_CARD.encode(), BLOCK_MARK, SLOW_MARK, MONITOR_MARK)
        found = await asyncio.to_thread(_contains, item, marks)
        self.contexts.append(context)
        self.names.append(item.name)
        if SLOW_MARK in found:
            raise ScanTimeout("scan did not finish within 1 s")
        if BLOCK_MARK in found:
            return card_result(Action.BLOCK, name=item.name or "")
        if PLANTED_CARD.encode() in found:
            return card_result(Action.QUARANTINE, name=item.name or "")
        part = PartInfo("file", "application/octet-stream", item.size)
        if MONITOR_MARK in found:
            rule = RuleMatch("watch", Action.ALERT, "watched word", mode="monitor")
            verdict = Verdict(Action.ALLOW, rules=(rule,))
        else:
            verdict = Verdict(Action.ALLOW)
        return ScanResult(new_id(), verdict, (part,), (), (), item_size=item.size, item_name=item.name)


class LogCapture(logging.Handler):
    """Every log line, formatted, for the leak checks."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Running:
    """A live server: where, its store and settings, a token per role, its logs."""

    url: str
    settings: Settings
    store: Store
    tokens: dict[str, str]
    scanner: ScanService
    logs: LogCapture

    def client(self, role: str | None = None, timeout: float = 30.0) -> httpx.Client:
        """An httpx client, authenticated as `role` (None: no token); plain HTTP, so no
        certificate bundle is loaded."""
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=False)


def server_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings for a server under `state_dir`, with a Maildir next hop beside it."""
    data: dict[str, Any] = {
        "state_dir": state_dir,
        "smtp": {"next_hop": f"maildir:{state_dir.parent / 'outbox'}"},
        "http": {"max_upload_bytes": 4 * 1024 * 1024, "auth_failures_per_minute": 10_000},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings.model_validate(data)


@contextlib.contextmanager
def serve(
    state_dir: Path,
    scanner: ScanService | None = None,
    policies: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> Iterator[Running]:
    """Run the API on 127.0.0.1:<free port> until the block ends."""
    settings = server_settings(state_dir, **overrides)
    store = open_store(settings)
    logs = LogCapture()
    logging.getLogger().addHandler(logs)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    scanner = scanner or StandInScanner()
    loaded = [{"id": "pci-card-external", "action": "block"}] if policies is None else policies
    app = create_app(settings, scanner, store, policies_info=lambda: loaded, detectors_info=lambda: [])
    tokens = {role.label: store.create_token(role, f"{role.label}-{new_id()[-6:]}")[0] for role in Role}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", settings, store, tokens, scanner, logs)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        store.close()
        logging.getLogger().removeHandler(logs)
        logging.getLogger().setLevel(previous_level)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server for a test module (4 MiB upload limit, Maildir next hop)."""
    with serve(tmp_path_factory.mktemp("api") / "var") as running:
        yield running


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of the schemathesis run (selectable with `-m schemathesis`)."""
    config.addinivalue_line("markers", "schemathesis: property-based run against /openapi.json")
