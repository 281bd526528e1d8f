"""The relay killed mid-transaction (SIGKILL, in a subprocess): the client never sees a
250 for a message that was not delivered, and after a restart the retried message is
delivered exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from dlp.smtp import replies
from tests.smtp.client import Ledger, Outcome, make_message, send
from tests.smtp.sink import Sink, start_sink

ROOT = Path(__file__).resolve().parents[2]


def _start(state: Path, hop: str, port: int = 0) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.smtp.relay_process", str(state), hop, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip().isdigit(), f"relay process did not start: {line!r}"
    return process, int(line)


def _kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _partial_data(port: int) -> Outcome:
    """Send the envelope and half a message, then wait for the relay to vanish."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            stream = conn.makefile("rwb")
            stream.readline()
            for command in (
                b"EHLO client.test",
                b"MAIL FROM:<alice@corp.example>",
                b"RCPT TO:<bob@x.example>",
            ):
                stream.write(command + b"\r\n")
                stream.flush()
                while stream.readline()[3:4] == b"-":
                    continue
            stream.write(b"DATA\r\n")
            stream.flush()
            stream.readline()
            stream.write(make_message("crash-1")[:200])
            stream.flush()
            rest = stream.readline()
    except OSError:
        return Outcome(0, "disconnected")
    return Outcome(0, "disconnected") if not rest else Outcome(int(rest[:3]), rest[4:].decode())


async def test_relay_killed_mid_transaction(tmp_path: Path) -> None:
    sink = await start_sink(Sink(data_delay=1.5))
    hop = f"smtp://127.0.0.1:{sink.port}"
    process, port = await asyncio.to_thread(_start, tmp_path, hop)
    ledger = Ledger()
    try:
        # 1. killed while the client is still sending DATA
        partial = asyncio.create_task(asyncio.to_thread(_partial_data, port))
        await asyncio.sleep(0.3)
        # 2. killed while the next hop holds its reply to "."
        whole = asyncio.create_task(asyncio.to_thread(send, port, make_message("crash-2"), timeout=10))
        while len(sink.raw_rcpt_lines) < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(_kill, process)
        first, second = await partial, await whole
        assert (first.code, second.code) == (0, 0)
        assert sink.received == []
        # the sending MTA retries after the restart
        process, port = await asyncio.to_thread(_start, tmp_path, hop, port)
        sink.data_delay = 0
        for marker in ("crash-1", "crash-2"):
            outcome = await asyncio.to_thread(send, port, make_message(marker))
            assert f"{outcome.code} {outcome.text}" == replies.DELIVERED
            ledger.record(marker, outcome)
        counts = ledger.check([r.data for r in sink.received])
        print(f"ledger relay killed: {counts}, dropped before restart: 2")
        assert counts == {"accepted": 2, "delivered": 2, "quarantined": 0, "4xx": 0, "5xx": 0, "dropped": 0}
    finally:
        if process.poll() is None:
            _kill(process)
        await sink.close()
