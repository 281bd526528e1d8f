"""SMTP relay benchmark: messages per second and added latency, scanning vs pass-through.

    .venv/bin/python bench/smtp.py [--messages 2000] [--clients 20] [--workers 0]

Three runs in one invocation, each with the same clients and messages:
- `direct`: clients talk to the sink itself (the baseline latency of SMTP on loopback);
- `pass-through`: clients -> relay with `smtp.scan: false` -> sink;
- `scanning`: clients -> relay with scanning (worker pool, shipped policy packs) -> sink.
The sink and each relay run in their own processes; the clients (aiosmtplib, one
connection each, reused like an MTA's connection cache) run here. Messages are about
10 KB: a business-prose body and a small CSV attachment, to external recipients, clean
(so every message is scanned and forwarded). Latency is per message, from MAIL to the
reply to "."; "added" is the relay's latency minus the direct one at the same
percentile. Targets (issue 5, 2-core machine): >= 300 messages/s with scanning, and
scanning keeps >= 70% of pass-through throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlp.config import Settings, SmtpSettings  # noqa: E402

PROSE = (
    "Following up on Tuesday's planning meeting, the team agreed to move the vendor review to "
    "the second week of the quarter. Procurement will circulate the updated timeline, and each "
    "workstream lead should confirm resourcing by Friday. The facilities group reminded everyone "
    "that the third-floor meeting rooms are closed for maintenance until further notice. "
)


def make_message(n: int) -> bytes:
    """One ~10 KB message: prose body plus a small CSV attachment."""
    msg = EmailMessage()
    msg["From"] = "Alice Example <alice@corp.example>"
    msg["To"] = "Bob Partner <bob@partner.example>"
    msg["Subject"] = f"Planning notes, part {n}"
    msg["Message-ID"] = f"<bench-{n}@corp.example>"
    body = "\n\n".join(f"{i + 1}. {PROSE}" for i in range(22))
    msg.set_content(body)
    rows = "\n".join(
        f"Q{q},{region},{1000 + 37 * q * r}"
        for q in range(1, 5)
        for r, region in enumerate(("north", "south", "east", "west", "central", "online"), start=1)
    )
    msg.add_attachment(
        ("quarter,region,units\n" + rows + "\n").encode() * 2,
        maintype="text",
        subtype="csv",
        filename="units.csv",
    )
    return msg.as_bytes(policy=SMTP_POLICY)


# sink process


def _sink_main(ready: Any, stop: Event) -> None:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Discard:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            return "250 2.0.0 Ok"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="sink.bench", enable_SMTPUTF8=True, loop=loop), "127.0.0.1", 0
        )
        ready.put(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(stop.wait)
        server.close()

    asyncio.run(serve())


# relay process


def _relay_main(settings_json: str, ready: Any, stop: Event) -> None:
    from dlp.config import Settings
    from dlp.smtp.relay import Relay
    from dlp.store import open_store
    from dlp.workers import ScanPool

    settings = Settings.model_validate_json(settings_json)

    async def serve() -> None:
        pool = ScanPool(settings) if settings.smtp.scan else None
        if pool is not None:
            await asyncio.to_thread(pool.warm_up)
        relay = Relay(settings, pool, open_store(settings))
        await relay.start()
        ready.put(relay.port)
        await asyncio.to_thread(stop.wait)
        await relay.stop(5)
        if pool is not None:
            pool.close()

    asyncio.run(serve())


@dataclass
class Run:
    """One mode's results."""

    name: str
    messages: int
    seconds: float
    latencies: list[float]
    failures: int

    @property
    def rate(self) -> float:
        """Messages accepted per second."""
        return self.messages / self.seconds

    def percentile(self, p: float) -> float:
        """Latency at percentile p, in milliseconds."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _client(port: int, queue: asyncio.Queue[int], messages: list[bytes], latencies: list[float]) -> int:
    failures = 0
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120, start_tls=False)
    await client.connect()
    while True:
        try:
            n = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        started = time.perf_counter()
        try:
            await client.sendmail("alice@corp.example", ["bob@partner.example"], messages[n % len(messages)])
        except aiosmtplib.SMTPException:
            failures += 1
            continue
        latencies.append(time.perf_counter() - started)
    await client.quit()
    return failures


async def _load(port: int, count: int, clients: int, messages: list[bytes]) -> tuple[float, list[float], int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    latencies: list[float] = []
    started = time.perf_counter()
    failures = await asyncio.gather(*(_client(port, queue, messages, latencies) for _ in range(clients)))
    return time.perf_counter() - started, latencies, sum(failures)


def _run(name: str, port: int, args: argparse.Namespace, messages: list[bytes]) -> Run:
    asyncio.run(_load(port, min(200, args.messages), args.clients, messages))  # warm-up
    seconds, latencies, failures = asyncio.run(_load(port, args.messages, args.clients, messages))
    return Run(name, len(latencies), seconds, latencies, failures)


def _relay(ctx: Any, settings: Settings) -> tuple[Any, Event, int]:
    ready, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_relay_main, args=(settings.model_dump_json(), ready, stop))
    process.start()
    return process, stop, int(ready.get(timeout=120))


def main() -> None:
    """Run the three modes and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="timed messages per mode")
    parser.add_argument("--clients", type=int, default=20, help="concurrent SMTP clients")
    parser.add_argument("--workers", type=int, default=0, help="scan worker processes (0: one per core)")
    args = parser.parse_args()
    messages = [make_message(n) for n in range(50)]
    ctx = multiprocessing.get_context("spawn")
    sink_ready, sink_stop = ctx.Queue(), ctx.Event()
    sink = ctx.Process(target=_sink_main, args=(sink_ready, sink_stop))
    sink.start()
    sink_port = int(sink_ready.get(timeout=60))
    runs = [_run("direct (sink only)", sink_port, args, messages)]
    with tempfile.TemporaryDirectory(prefix="dlp-bench-smtp-") as state:
        for name, scan in (("relay, pass-through", False), ("relay, scanning", True)):
            settings = Settings(
                state_dir=Path(state),
                internal_domains=("corp.example",),
                workers=args.workers,
                log_level="WARNING",
                smtp=SmtpSettings(
                    listen="127.0.0.1:0",
                    next_hop=f"smtp://127.0.0.1:{sink_port}",
                    next_hop_tls="none",
                    hostname="relay.bench",
                    scan=scan,
                ),
            )
            process, stop, port = _relay(ctx, settings)
            try:
                runs.append(_run(name, port, args, messages))
            finally:
                stop.set()
                process.join(30)
    sink_stop.set()
    sink.join(10)
    _report(runs, args, len(messages[0]))


def _report(runs: list[Run], args: argparse.Namespace, size: int) -> None:
    direct, passthrough, scanning = runs
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(
        f"load: {args.clients} concurrent clients, {args.messages} timed messages per mode, {size} bytes each"
    )
    print()
    columns = ("msg/s", "p50 ms", "p99 ms", "added p50", "added p99", "fail")
    header = f"{'mode':<22}" + "".join(f"{c:>11}" for c in columns)
    print(header)
    print("-" * len(header))
    for run in runs:
        added50 = run.percentile(50) - direct.percentile(50)
        added99 = run.percentile(99) - direct.percentile(99)
        added = ("", "") if run is direct else (f"{added50:.1f}", f"{added99:.1f}")
        print(
            f"{run.name:<22}{run.rate:>11.0f}{run.percentile(50):>11.1f}{run.percentile(99):>11.1f}"
            f"{added[0]:>11}{added[1]:>11}{run.failures:>11}"
        )
    kept = 100 * scanning.rate / passthrough.rate
    print(
        f"\nscanning keeps {kept:.0f}% of pass-through throughput (target >= 70%); "
        f"scanning {scanning.rate:.0f} msg/s (target >= 300)"
    )
    print(
        f"mean latency: scanning {1000 * statistics.fmean(scanning.latencies):.1f} ms, "
        f"pass-through {1000 * statistics.fmean(passthrough.latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
