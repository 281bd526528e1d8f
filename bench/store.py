"""Store benchmark: quarantine and incident writes per second, SQLite vs PostgreSQL.

    .venv/bin/python bench/store.py [--seconds 2] [--rounds 3] [--threads 1,8] [--message-kb 20]

Both backends in one run, on the same machine and disk, each durable as deployed:
- `sqlite`: the embedded default (WAL, `synchronous=FULL`, one fsynced file per item);
- `postgresql`: a private PostgreSQL cluster started for the run (initdb in a temporary
  folder, loopback port, PostgreSQL's default durability: fsync on, synchronous_commit
  on), one store;
- `postgresql x2`: two stores on that database, each with its own connection pool, the
  threads split between them (two replicas sharing the database; 2 threads or more).
For each, T threads call `quarantine()` (a message of K KB, encrypted) or
`record_incident()` back to back for S seconds; a rate is calls that returned (that is,
committed) per second. SQLite is the baseline: the last column is the rate relative to
SQLite at the same thread count. Needs Debian's `postgresql` (scripts/test-deps).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlp.store import Store, open_store  # noqa: E402
from dlp.store.sqlite import master_key_path  # noqa: E402
from tests.store.factories import card_result, mail_context, settings_for  # noqa: E402
from tests.store.pg_cluster import find_bindir, private_cluster  # noqa: E402

__all__ = ["main", "rate"]


def rate(stores: list[Store], operation: str, threads: int, seconds: float, message: bytes) -> float:
    """Calls per second of `operation` by `threads` threads spread over `stores`."""
    result, context = card_result(), mail_context()
    calls: dict[str, Callable[[Store], object]] = {
        "quarantine": lambda store: store.quarantine(message, result, context),
        "incident": lambda store: store.record_incident(result, context),
    }
    call = calls[operation]
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop = threading.Event()

    def work(n: int) -> None:
        store = stores[n % len(stores)]
        start.wait()
        while not stop.is_set():
            call(store)
            counts[n] += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


@contextlib.contextmanager
def _backends(tmp: Path, url: str) -> Iterator[dict[str, list[Store]]]:
    sqlite = open_store(settings_for(tmp / "sqlite"))
    first = open_store(settings_for(tmp / "pg-a", store=url))
    second_state = tmp / "pg-b"
    master_key_path(second_state).parent.mkdir(parents=True)
    master_key_path(second_state).write_bytes(master_key_path(tmp / "pg-a").read_bytes())
    second = open_store(settings_for(second_state, store=url))
    try:
        yield {"sqlite": [sqlite], "postgresql": [first], "postgresql x2": [first, second]}
    finally:
        for store in (sqlite, first, second):
            store.close()


def main() -> None:
    """Run every backend, operation and thread count; print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--message-kb", type=int, default=20)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("bench/store.py: PostgreSQL is not installed (bash scripts/test-deps)")
    thread_counts = [int(t) for t in args.threads.split(",")]
    message = os.urandom(args.message_kb * 1024)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}, "
        f"PostgreSQL {bindir.parent.name}"
    )
    print(
        f"{args.seconds:g} s per cell, {args.rounds} rounds (cells alternate within a round; "
        f"the median counts); quarantine messages of {args.message_kb} KB; rates in calls/s"
    )
    print()
    measured: dict[tuple[str, int, str], list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="dlp-bench-store-") as folder,
        private_cluster(bindir, durable=True) as cluster,
        _backends(Path(folder), cluster.create_schema()) as backends,
    ):
        for _ in range(args.rounds):
            for operation in ("quarantine", "incident"):
                for threads in thread_counts:
                    for name, stores in backends.items():
                        if threads >= len(stores):
                            cell = (operation, threads, name)
                            rated = rate(stores, operation, threads, args.seconds, message)
                            measured.setdefault(cell, []).append(rated)
    header = f"{'operation':<11} {'threads':>7} {'backend':<14} {'calls/s':>9} {'vs sqlite':>9}"
    print(header)
    print("-" * len(header))
    for (operation, threads, name), rates in measured.items():
        median = statistics.median(rates)
        baseline = statistics.median(measured[(operation, threads, "sqlite")])
        print(f"{operation:<11} {threads:>7} {name:<14} {median:>9.0f} {median / baseline:>8.2f}x")


if __name__ == "__main__":
    main()
