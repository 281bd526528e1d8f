"""HTTP scan API benchmark: scans per second with concurrent clients, peak RSS on a huge upload.

    python bench/api.py [--workers N] [--clients C] [--seconds S] [--huge-mib M]
    python bench/api.py --backends sqlite,postgresql --replicas 1,2 [--seconds S] [--rounds R]

Starts the real service pieces in a child process (uvicorn + `create_app` + a `ScanPool`
of N workers + the SQLite store, on a loopback port the OS picks), then from this
process:
1. baseline: the same documents scanned by one in-process `Scanner` (no HTTP, one core);
2. `POST /v1/scan` with C concurrent clients for S seconds, for 10 KB and 1 MB documents
   (text with a realistic sprinkling of e-mail addresses; no quarantine writes), as
   scans/s and MB/s, twice: from Python (httpx, C tasks on one event loop in this
   process) and, when it is installed, from wrk (C, one thread, C keep-alive
   connections). The Python client spends about as much CPU per request as the server,
   on the same two cores, so for small documents it measures itself more than the API;
   wrk's figure is the API's;
3. one upload of M MiB (default 1024) of plain text (no addresses: what is measured is
   the streaming, not the size of a result with hundreds of thousands of findings)
   streamed from a generator while the RSS of the server process and each worker is
   sampled every 20 ms: peak RSS per process.
Target (issue 6): peak RSS < 250 MB while a 1 GiB upload is scanned.

Scale-out run (`--backends`, issue 9): each deployment (a store backend and a number of
`dlp serve` replicas, see bench/replicas.py; `--replica-workers` scan workers each) is
started once, warmed up for a second per workload, and measured in turn, alternating
within each of R rounds, each round starting with the next (medians count).
C clients, spread over the replicas round-robin, post small items for S seconds: a clean
2 KB text (a scan and a token check per request) and a 2 KB text with a card number,
which a bench policy quarantines (per request also an encrypted quarantine write and an
incident, both committed before the answer). The baseline is `sqlite x1` in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["document", "main"]

_TEXT = (
    "the quarterly report shows revenue growth across regions while costs remained stable and the team "
    "plans to review supplier contracts before the next meeting with finance and legal departments"
)
_WORDS = _TEXT.split()


def document(size: int, seed: int = 7, addresses: bool = True) -> bytes:
    """Plain business text of `size` bytes, with an e-mail address every ~5 KB (or none)."""
    rng = random.Random(seed)
    out: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(14))
        if addresses and rng.random() < 0.02:
            line += f" contact j.doe{rng.randint(1, 999)}@example.com"
        out.append(line)
        length += len(line) + 1
    return ("\n".join(out)).encode()[:size]


_CARD_LINE = "\nplease charge the order to Visa card number 4929180432771533 as agreed\n"
_BENCH_POLICY = """name: bench
description: Quarantine any payment card number (scale-out benchmark)
rules:
  - id: bench-card
    description: A card number
    severity: high
    action: quarantine
    when:
      findings: {detectors: [credit-card], min_confidence: high}
"""


async def _spread(
    urls: list[str], token: str, data: bytes, expect: str, clients: int, seconds: float
) -> tuple[float, int]:
    """Scans per second answered with action `expect`, client n posting to `urls[n % len(urls)]`."""
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds
    per_url = max(1, clients // len(urls))
    sessions = [
        httpx.AsyncClient(
            base_url=url, headers=headers, timeout=120, limits=httpx.Limits(max_connections=per_url)
        )
        for url in urls
    ]

    async def worker(n: int) -> None:
        nonlocal done, errors
        client = sessions[n % len(sessions)]
        while time.perf_counter() < stop:
            response = await client.post("/v1/scan", content=data, params={"filename": "doc.txt"})
            if response.status_code == 200 and response.json()["action"] == expect:
                done += 1
            else:
                errors += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(n) for n in range(clients)))
    finally:
        for session in sessions:
            await session.aclose()
    return done / (time.perf_counter() - started), errors


def _scale(args: argparse.Namespace) -> None:
    from bench.replicas import deployments, parse_plan, postgres_version

    plan = parse_plan(args.backends, args.replicas)
    clean = document(2048, seed=3, addresses=False)
    workloads = {
        "clean 2 KB (scan)": (clean, "allow"),
        "card 2 KB (quarantine + incident)": (
            clean[: 2048 - len(_CARD_LINE)] + _CARD_LINE.encode(),
            "quarantine",
        ),
    }
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"PostgreSQL {postgres_version()} (default durability), load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{args.clients} clients round-robin over the replicas, {args.seconds:g} s per cell, "
        f"{args.rounds} rounds (deployments alternate, each round starting with the next; medians); "
        f"{args.replica_workers} scan worker(s) per replica"
    )
    measured: dict[tuple[str, str], list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="dlp-bench-api-scale-") as folder:
        policies = Path(folder) / "policies"
        policies.mkdir()
        (policies / "bench.yaml").write_text(_BENCH_POLICY)
        env = {"DLP_WORKERS": str(args.replica_workers), "DLP_HTTP__AUTH_FAILURES_PER_MINUTE": "1000000"}
        with deployments(Path(folder), plan, policies, env) as running:
            for deployment in running:
                urls = [r.http for r in deployment.replicas]
                for data, expect in workloads.values():
                    asyncio.run(_spread(urls, deployment.token, data, expect, args.clients, 1.0))
            for turn in range(args.rounds):
                for workload, (data, expect) in workloads.items():
                    for deployment in running[turn % len(running) :] + running[: turn % len(running)]:
                        urls = [r.http for r in deployment.replicas]
                        cell = asyncio.run(
                            _spread(urls, deployment.token, data, expect, args.clients, args.seconds)
                        )
                        measured.setdefault((workload, deployment.name), []).append(cell)
    print()
    baseline_name = f"{plan[0][0]} x{plan[0][1]}"
    header = f"{'workload':<34} {'deployment':<14} {'scans/s':>8} {'vs ' + baseline_name:>14} {'errors':>7}"
    print(header)
    print("-" * len(header))
    for (workload, name), cells in measured.items():
        rate = statistics.median(c[0] for c in cells)
        base = statistics.median(c[0] for c in measured[(workload, baseline_name)])
        errors = sum(c[1] for c in cells)
        print(f"{workload:<34} {name:<14} {rate:>8.1f} {rate / base:>13.2f}x {errors:>7}")
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")


def _serve(state: Path, workers: int) -> None:
    import socket

    import uvicorn

    from dlp.api import create_app
    from dlp.config import Settings
    from dlp.store import open_store
    from dlp.workers import ScanPool

    settings = Settings.model_validate(
        {
            "state_dir": state,
            "workers": workers,
            "smtp": {"enabled": False},
            "http": {"max_upload_bytes": 4 * 1024**3},
            "limits": {"max_seconds": 600, "max_total_bytes": 4 * 1024**3, "max_member_bytes": 4 * 1024**3},
        }
    )
    store = open_store(settings)
    pool = ScanPool(settings)
    pool.warm_up()
    app = create_app(settings, pool, store, policies_info=lambda: [{"id": "bench"}])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    def stop_at_end_of_input() -> None:
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=stop_at_end_of_input, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        pool.close()
        store.close()


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _baseline(docs: dict[str, bytes], seconds: float, state: Path) -> dict[str, float]:
    from dlp.config import Settings
    from dlp.model import Item, ScanContext
    from dlp.pipeline import Scanner

    scanner = Scanner.from_settings(Settings.model_validate({"state_dir": state}))
    rates: dict[str, float] = {}
    for label, data in docs.items():
        count = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            scanner.scan(Item(data=data, name="doc.txt"), ScanContext(channel="http"))
            count += 1
        rates[label] = count / (time.perf_counter() - started)
    return rates


_WRK_SCRIPT = r"""
wrk.method = "POST"
local f = io.open(os.getenv("DLP_BENCH_BODY"), "rb"); wrk.body = f:read("*all"); f:close()
wrk.headers["Authorization"] = "Bearer " .. os.getenv("DLP_BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/octet-stream"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RATE %f ERRORS %d\n", summary.requests / (summary.duration / 1e6),
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def _wrk(url: str, token: str, data: bytes, clients: int, seconds: float) -> tuple[float, int] | None:
    """Scans per second and failed requests as measured with wrk (C, one thread, keep-alive
    connections, so the load generator costs little CPU), or None when wrk is not installed."""
    if not shutil.which("wrk"):
        return None
    with tempfile.TemporaryDirectory(prefix="dlp-bench-wrk-") as folder:
        body, script = Path(folder) / "body", Path(folder) / "post.lua"
        body.write_bytes(data)
        script.write_text(_WRK_SCRIPT)
        environment = {**os.environ, "DLP_BENCH_BODY": str(body), "DLP_BENCH_TOKEN": token}
        command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "120s", "-s", str(script)]
        output = subprocess.run(
            [*command, f"{url}/v1/scan?filename=doc.txt"],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    fields = output[output.index("RATE ") :].split()
    return float(fields[1]), int(fields[3])


async def _load(url: str, token: str, data: bytes, clients: int, seconds: float) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < stop:
                response = await client.post("/v1/scan", content=data, params={"filename": "doc.txt"})
                if response.status_code == 200:
                    done += 1
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return done / elapsed, errors


async def _huge(url: str, token: str, mib: int) -> tuple[float, dict[str, object]]:
    block = document(1024 * 1024, seed=11, addresses=False)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(mib):
            yield block

    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=1800) as client:
        response = await client.post("/v1/scan", content=body(), params={"filename": "huge.txt"})
    result = response.json()
    return time.perf_counter() - started, {"status": response.status_code, "flags": result.get("flags")}


def _sample(pid: int, stop: threading.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        peaks["server"] = max(peaks.get("server", 0), _rss_kib(pid))
        total = _rss_kib(pid)
        for index, child in enumerate(sorted(_children(pid))):
            rss = _rss_kib(child)
            peaks[f"child {index}"] = max(peaks.get(f"child {index}", 0), rss)
            total += rss
        peaks["total"] = max(peaks.get("total", 0), total)
        time.sleep(0.02)


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--huge-mib", type=int, default=1024)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--backends", help="scale-out run: store backends, e.g. sqlite,postgresql")
    parser.add_argument("--replicas", default="1,2", help="scale-out run: replica counts (default 1,2)")
    parser.add_argument("--replica-workers", type=int, default=1, help="scale-out run: workers per replica")
    parser.add_argument("--rounds", type=int, default=3, help="scale-out run: rounds")
    args = parser.parse_args()
    if args.backends:
        _scale(args)
        return
    if args.serve:
        _serve(Path(args.serve), args.workers)
        return

    state = Path(tempfile.mkdtemp(prefix="dlp-bench-api-")) / "var"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(state), "--workers", str(args.workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        token = (state / "admin-token").read_text().strip()
        docs = {"10 KB": document(10 * 1024), "1 MB": document(1024 * 1024)}
        print(
            f"# bench/api.py on {platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(
            f"# command: python bench/api.py --workers {args.workers} --clients {args.clients} "
            f"--seconds {args.seconds:g} --huge-mib {args.huge_mib}"
        )
        baseline = _baseline(docs, min(args.seconds, 5.0), state)
        print()
        print(
            f"{'document':<10} {'client':<7} {'baseline scans/s (1 core, no HTTP)':>36} {'API scans/s':>12} "
            f"{'API MB/s':>9} {'errors':>7}"
        )
        for label, data in docs.items():
            runs = {"httpx": asyncio.run(_load(url, token, data, args.clients, args.seconds))}
            measured = _wrk(url, token, data, args.clients, args.seconds)
            if measured is not None:
                runs["wrk"] = measured
            for client, (rate, errors) in runs.items():
                mbps = rate * len(data) / 1e6
                print(
                    f"{label:<10} {client:<7} {baseline[label]:>36.1f} {rate:>12.1f} {mbps:>9.1f} {errors:>7}"
                )
        print()
        peaks: dict[str, int] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(server.pid, stop, peaks), daemon=True)
        idle = {"server": _rss_kib(server.pid)}
        sampler.start()
        elapsed, outcome = asyncio.run(_huge(url, token, args.huge_mib))
        stop.set()
        sampler.join()
        print(f"upload of {args.huge_mib} MiB: {elapsed:.1f} s end to end, answer {outcome}")
        print(f"{'process':<10} {'idle RSS MB':>12} {'peak RSS MB':>12}")
        for name, peak in peaks.items():
            idle_mb = f"{idle[name] / 1024:.0f}" if name in idle else "-"
            print(f"{name:<10} {idle_mb:>12} {peak / 1024:>12.0f}")
        print("target: peak RSS of the server process < 250 MB")
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(state.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
