"""Postfix's smtp-sink as a faulty next hop of the relay: soft and hard rejects at each
stage, 421, a dropped connection and a slow reply. The client (an MTA) must get a 4xx
for every failure that may pass and a 5xx only when the next hop refused for good."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlp.smtp import replies
from tests.smtp.client import Ledger, make_message, send
from tests.smtp.conftest import RelayFactory

pytestmark = [
    pytest.mark.skipif(shutil.which("smtp-sink") is None, reason="postfix not installed (scripts/test-deps)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="smtp-sink as root must drop to the postfix user"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_sink(dump: Path, options: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    process = subprocess.Popen(
        ["smtp-sink", "-u", "postfix", "-d", f"{dump}/msg.", *options, f"127.0.0.1:{port}", "20"]
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise AssertionError("smtp-sink did not start")


@pytest.fixture
def dump_dir() -> Iterator[Path]:
    """A folder smtp-sink (running as the postfix user) may write messages into: outside
    pytest's private (mode 0700) temporary tree."""
    base = Path(tempfile.mkdtemp(prefix="dlp-smtp-sink-"))
    base.chmod(0o755)
    folder = base / "dump"
    folder.mkdir()
    shutil.chown(folder, "postfix")
    yield folder
    shutil.rmtree(base, ignore_errors=True)


SINK_FAULTS = [
    ("healthy", [], replies.DELIVERED, 1),
    ("soft reject RCPT", ["-r", "RCPT"], replies.NEXT_HOP_UNAVAILABLE, 0),
    ("hard reject RCPT", ["-f", "RCPT"], replies.NEXT_HOP_REJECTED, 0),
    ("soft reject DATA", ["-r", "DATA"], replies.NEXT_HOP_UNAVAILABLE, 0),
    ("hard reject end of data", ["-f", "."], replies.NEXT_HOP_REJECTED, None),
    ("421 at MAIL", ["-Q", "MAIL"], replies.NEXT_HOP_UNAVAILABLE, 0),
    ("hard reject at connect", ["-f", "CONNECT"], replies.NEXT_HOP_UNAVAILABLE, 0),
    ("slow DATA reply past deadline", ["-w", "3"], replies.NEXT_HOP_UNAVAILABLE, 0),
    ("drop after end of data", ["-q", "."], replies.NEXT_HOP_UNAVAILABLE, None),
]


@pytest.mark.parametrize(("name", "options", "reply", "stored"), SINK_FAULTS, ids=[f[0] for f in SINK_FAULTS])
async def test_smtp_sink_faults(
    make_relay: RelayFactory, dump_dir: Path, name: str, options: list[str], reply: str, stored: int | None
) -> None:
    process, port = await asyncio.to_thread(_start_sink, dump_dir, options)
    try:
        relay = await make_relay(f"smtp://127.0.0.1:{port}", message_timeout_seconds=1.0)
        marker = name.replace(" ", "-")
        outcome = await asyncio.to_thread(send, relay.port, make_message(marker))
        assert f"{outcome.code} {outcome.text}" == reply
        await asyncio.sleep(0.1)
        dumped = [p.read_bytes() for p in dump_dir.iterdir() if p.stat().st_size]
        if stored is None:
            # smtp-sink writes the message before it replies to ".", whatever the reply.
            # After a dropped connection the relay cannot know whether the next hop kept
            # it, so it answers 4xx: the retry may deliver a second copy, never none.
            print(f"ledger smtp-sink {name}: {outcome.code}, smtp-sink wrote {len(dumped)} before replying")
            return
        ledger = Ledger()
        ledger.record(marker, outcome)
        print(f"ledger smtp-sink {name}: {ledger.check(dumped)}")
        assert len(dumped) == stored
    finally:
        process.kill()
        process.wait()
