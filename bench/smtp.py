"""SMTP relay benchmark: messages per second and added latency, scanning vs pass-through.

    .venv/bin/python bench/smtp.py [--rounds 3] [--messages 500] [--source-messages 1000]
    .venv/bin/python bench/smtp.py --backends sqlite,postgresql --replicas 1,2 [--rounds 3] [--messages 500]

Three modes in one invocation, alternating over several rounds (rates are medians over
rounds, so a burst of load from elsewhere does not favour one mode), each with the
same clients and messages:
- `direct`: clients talk to the sink itself (the baseline of SMTP on loopback);
- `pass-through`: clients -> relay with `smtp.scan: false` -> sink;
- `scanning`: clients -> relay with scanning (worker pool, shipped policy packs) -> sink.
Each mode is measured twice: throughput with Postfix's `smtp-source` (C, 20 parallel
sessions reusing their connections, so the load generator costs little CPU), and
per-message latency with 20 Python clients (aiosmtplib, one connection each), from MAIL
to the reply to "."; "added" is the relay's latency minus the direct one at the same
percentile. The sink is Postfix's `smtp-sink` (an aiosmtpd sink when Postfix is not
installed; then throughput comes from the Python clients). The sink and each relay run
in their own processes. Messages are about 10 KB: a business-prose body and a small
CSV attachment, to an external recipient, clean (so every message is scanned and
forwarded). Targets (issue 5, 2-core machine): >= 300 messages/s with scanning, and
scanning keeps >= 70% of pass-through throughput.

Scale-out run (`--backends`, issue 9): each deployment (a store backend and a number of
`dlp serve` replicas with the shipped policy packs, see bench/replicas.py;
`--replica-workers` scan workers each) relays to the one sink. The Python clients, spread
over the replicas round-robin, send M messages per cell: clean mail (scanned and
forwarded; no store write) and the same mail with a card number to the external
recipient, which the PCI pack quarantines (every message: an encrypted quarantine write
and an incident, committed before the 250). Deployments alternate within each round
(each round starting with the next one);
rates are medians; the baseline is `sqlite x1` in the same run. At the end the number
of held items in each deployment's store is checked against the quarantined messages
accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
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


CARD_LINE = "\n\nPlease charge the renewal to Visa card number 4929180432771533 as agreed.\n"


def make_message(n: int, extra: str = "") -> bytes:
    """One ~10 KB message: prose body (then `extra`) plus a small CSV attachment."""
    msg = EmailMessage()
    msg["From"] = "Alice Example <alice@corp.example>"
    msg["To"] = "Bob Partner <bob@partner.example>"
    msg["Subject"] = f"Planning notes, part {n}"
    msg["Message-ID"] = f"<bench-{n}@corp.example>"
    body = "\n\n".join(f"{i + 1}. {PROSE}" for i in range(22))
    msg.set_content(body + extra)
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


def _start_sink(ctx: Any) -> tuple[int, Any, str]:
    """The sink: smtp-sink when installed, else an aiosmtpd sink process."""
    if shutil.which("smtp-sink"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        user = ["-u", "postfix"] if os.geteuid() == 0 else []
        process = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return port, process, "smtp-sink"
            except OSError:
                time.sleep(0.05)
        raise SystemExit("smtp-sink did not start")
    ready, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_sink_main, args=(ready, stop))
    process.start()
    process.stop_event = stop
    return int(ready.get(timeout=60)), process, "aiosmtpd"


def _stop_sink(process: Any) -> None:
    if isinstance(process, subprocess.Popen):
        process.kill()
        process.wait()
    else:
        process.stop_event.set()
        process.join(10)


def _smtp_source(port: int, count: int, sessions: int, message_file: Path) -> float | None:
    """Messages per second as measured with smtp-source, or None without Postfix."""
    if not shutil.which("smtp-source"):
        return None
    command = [
        "smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-F", str(message_file),
        "-f", "alice@corp.example", "-t", "bob@partner.example", "-M", "client.bench", f"127.0.0.1:{port}",
    ]  # fmt: skip
    warm_up = [*command[:5], str(min(count, 200)), *command[6:]]
    subprocess.run(warm_up, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return count / (time.perf_counter() - started)


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
    source_rate: float | None = None

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


async def _spread(
    ports: list[int], count: int, clients: int, messages: list[bytes]
) -> tuple[float, list[float], int]:
    """Like `_load`, client n talking to `ports[n % len(ports)]` (a round-robin balancer)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    latencies: list[float] = []
    started = time.perf_counter()
    failures = await asyncio.gather(
        *(_client(ports[n % len(ports)], queue, messages, latencies) for n in range(clients))
    )
    return time.perf_counter() - started, latencies, sum(failures)


def _held(url: str, token: str) -> int:
    import httpx

    answer = httpx.get(
        f"{url}/v1/quarantine",
        params={"status": "held", "limit": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return int(answer.json()["total"])


def _scale(args: argparse.Namespace) -> None:
    from bench.replicas import deployments, parse_plan, postgres_version

    plan = parse_plan(args.backends, args.replicas)
    workloads = {
        "clean (scan, forward)": [make_message(n) for n in range(50)],
        "card (quarantine + incident)": [make_message(n, CARD_LINE) for n in range(50)],
    }
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {postgres_version()} (default durability), load average {os.getloadavg()[0]:.1f}"
    )
    ctx = multiprocessing.get_context("spawn")
    sink_port, sink, sink_kind = _start_sink(ctx)
    print(
        f"{args.clients} Python clients round-robin over the replicas, {args.messages} messages of "
        f"{len(workloads['clean (scan, forward)'][0])} bytes per cell, sink: {sink_kind}; "
        f"{args.rounds} rounds (deployments alternate, each round starting with the next; medians); "
        f"{args.replica_workers} scan worker(s) per replica"
    )
    env = {
        "DLP_SMTP__NEXT_HOP": f"smtp://127.0.0.1:{sink_port}",
        "DLP_SMTP__NEXT_HOP_TLS": "none",
        "DLP_SMTP__HOSTNAME": "relay.bench",
        "DLP_INTERNAL_DOMAINS": "corp.example",
        "DLP_WORKERS": str(args.replica_workers),
    }
    measured: dict[tuple[str, str], list[Run]] = {}
    held: dict[str, tuple[int, int]] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="dlp-bench-smtp-scale-") as folder,
            deployments(Path(folder), plan, ROOT / "policies", env) as running,
        ):
            accepted = dict.fromkeys((d.name for d in running), 0)
            for deployment in running:
                ports = [r.smtp[1] for r in deployment.replicas]
                for name, messages in workloads.items():
                    _, warm, _ = asyncio.run(_spread(ports, min(100, args.messages), args.clients, messages))
                    accepted[deployment.name] += len(warm) if name.startswith("card") else 0
            for turn in range(args.rounds):
                for name, messages in workloads.items():
                    for deployment in running[turn % len(running) :] + running[: turn % len(running)]:
                        ports = [r.smtp[1] for r in deployment.replicas]
                        seconds, latencies, failures = asyncio.run(
                            _spread(ports, args.messages, args.clients, messages)
                        )
                        run = Run(name, len(latencies), seconds, latencies, failures)
                        measured.setdefault((name, deployment.name), []).append(run)
                        accepted[deployment.name] += len(latencies) if name.startswith("card") else 0
            for deployment in running:
                held[deployment.name] = (
                    _held(deployment.replicas[-1].http, deployment.token),
                    accepted[deployment.name],
                )
    finally:
        _stop_sink(sink)
    print()
    baseline_name = f"{plan[0][0]} x{plan[0][1]}"
    columns = ("msg/s", "vs " + baseline_name, "p50 ms", "p99 ms", "fail")
    header = f"{'workload':<30}{'deployment':<15}" + "".join(f"{c:>15}" for c in columns)
    print(header)
    print("-" * len(header))
    for (name, deployment_name), runs in measured.items():
        merged = _merge(runs)
        base = _merge(measured[(name, baseline_name)])
        print(
            f"{name:<30}{deployment_name:<15}{merged.rate:>15.1f}{merged.rate / base.rate:>14.2f}x"
            f"{merged.percentile(50):>15.1f}{merged.percentile(99):>15.1f}{merged.failures:>15}"
        )
    print()
    for deployment_name, (count, expected) in held.items():
        print(f"{deployment_name}: {count} items held in the store, {expected} quarantined messages accepted")
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")


def _run(name: str, port: int, args: argparse.Namespace, messages: list[bytes], message_file: Path) -> Run:
    asyncio.run(_load(port, min(200, args.messages), args.clients, messages))  # warm-up
    seconds, latencies, failures = asyncio.run(_load(port, args.messages, args.clients, messages))
    source_rate = _smtp_source(port, args.source_messages, args.clients, message_file)
    return Run(name, len(latencies), seconds, latencies, failures, source_rate)


def _relay(ctx: Any, settings: Settings) -> tuple[Any, Event, int]:
    ready, stop = ctx.Queue(), ctx.Event()
    process = ctx.Process(target=_relay_main, args=(settings.model_dump_json(), ready, stop))
    process.start()
    return process, stop, int(ready.get(timeout=120))


def main() -> None:
    """Run the three modes, alternating over several rounds, and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=500, help="messages per mode and round, Python clients"
    )
    parser.add_argument("--source-messages", type=int, default=1000, help="per mode and round, smtp-source")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; modes alternate within each round")
    parser.add_argument("--clients", type=int, default=20, help="concurrent SMTP clients")
    parser.add_argument("--workers", type=int, default=0, help="scan worker processes (0: one per core)")
    parser.add_argument("--backends", help="scale-out run: store backends, e.g. sqlite,postgresql")
    parser.add_argument("--replicas", default="1,2", help="scale-out run: replica counts (default 1,2)")
    parser.add_argument("--replica-workers", type=int, default=1, help="scale-out run: workers per replica")
    args = parser.parse_args()
    if args.backends:
        _scale(args)
        return
    messages = [make_message(n) for n in range(50)]
    ctx = multiprocessing.get_context("spawn")
    sink_port, sink, sink_kind = _start_sink(ctx)
    relays: list[tuple[Any, Event]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dlp-bench-smtp-") as state:
            message_file = Path(state) / "message.eml"
            message_file.write_bytes(messages[0].replace(b"\r\n", b"\n"))
            modes = [("direct (sink only)", sink_port)]
            for name, folder, scan in (
                ("relay, pass-through", "pass-through", False),
                ("relay, scanning", "scanning", True),
            ):
                process, stop, port = _relay(ctx, _settings(Path(state) / folder, sink_port, scan, args))
                relays.append((process, stop))
                modes.append((name, port))
            rounds = [
                [_run(name, port, args, messages, message_file) for name, port in modes]
                for _ in range(args.rounds)
            ]
    finally:
        for process, stop in relays:
            stop.set()
            process.join(30)
        _stop_sink(sink)
    runs = [_merge([r[index] for r in rounds]) for index in range(len(modes))]
    _report(runs, args, len(messages[0]), sink_kind)
    _report_rounds(rounds)


def _settings(state: Path, sink_port: int, scan: bool, args: argparse.Namespace) -> Settings:
    return Settings(
        state_dir=state,
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


def _merge(rounds: list[Run]) -> Run:
    """One mode over all rounds: median rates, every latency sample."""
    rates = [r.rate for r in rounds]
    median = sorted(rounds, key=lambda r: r.rate)[len(rounds) // 2]
    sources = [r.source_rate for r in rounds if r.source_rate is not None]
    return Run(
        name=rounds[0].name,
        messages=median.messages,
        seconds=median.messages / statistics.median(rates),
        latencies=[x for r in rounds for x in r.latencies],
        failures=sum(r.failures for r in rounds),
        source_rate=statistics.median(sources) if sources else None,
    )


def _report(runs: list[Run], args: argparse.Namespace, size: int, sink_kind: str) -> None:
    direct, passthrough, scanning = runs
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"messages: {size} bytes; {args.clients} concurrent sessions; sink: {sink_kind}")
    print(f"rounds: {args.rounds}, the modes alternating within each; rates are medians over rounds")
    print(f"throughput: smtp-source, {args.source_messages} messages per mode and round (msg/s src)")
    print(f"latency: Python clients, {args.messages} messages per mode and round (msg/s py, p50, p99)")
    print()
    columns = ("msg/s src", "msg/s py", "p50 ms", "p99 ms", "added p50", "added p99", "fail")
    header = f"{'mode':<22}" + "".join(f"{c:>11}" for c in columns)
    print(header)
    print("-" * len(header))
    for run in runs:
        added = ("", "")
        if run is not direct:
            added50 = run.percentile(50) - direct.percentile(50)
            added99 = run.percentile(99) - direct.percentile(99)
            added = (f"{added50:.1f}", f"{added99:.1f}")
        source = "n/a" if run.source_rate is None else f"{run.source_rate:.0f}"
        print(
            f"{run.name:<22}{source:>11}{run.rate:>11.0f}{run.percentile(50):>11.1f}"
            f"{run.percentile(99):>11.1f}{added[0]:>11}{added[1]:>11}{run.failures:>11}"
        )
    print()
    for label, scan_rate, pass_rate in (
        ("smtp-source", scanning.source_rate, passthrough.source_rate),
        ("Python clients", scanning.rate, passthrough.rate),
    ):
        if scan_rate is not None and pass_rate is not None:
            print(
                f"{label}: scanning {scan_rate:.0f} msg/s (target >= 300), "
                f"{100 * scan_rate / pass_rate:.0f}% of pass-through (target >= 70%)"
            )
    print(
        f"mean latency: scanning {1000 * statistics.fmean(scanning.latencies):.1f} ms, "
        f"pass-through {1000 * statistics.fmean(passthrough.latencies):.1f} ms"
    )


def _report_rounds(rounds: list[list[Run]]) -> None:
    """Scanning over pass-through within each round (the two ran minutes apart at most):
    the spread shows how much of a run's ratio is this machine's noise."""
    pairs = [(passthrough, scanning) for _, passthrough, scanning in rounds]
    by_client: dict[str, list[tuple[float | None, float | None]]] = {
        "smtp-source": [(s.source_rate, p.source_rate) for p, s in pairs],
        "Python clients": [(s.rate, p.rate) for p, s in pairs],
    }
    for label, rates in by_client.items():
        ratios = [scan / passed for scan, passed in rates if scan is not None and passed is not None]
        if ratios:
            each = ", ".join(f"{100 * ratio:.0f}%" for ratio in ratios)
            print(
                f"{label}, scanning / pass-through in each round: {each} "
                f"(median {100 * statistics.median(ratios):.0f}%)"
            )


if __name__ == "__main__":
    main()
