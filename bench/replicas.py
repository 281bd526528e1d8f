"""`dlp serve` replicas for the scale-out benchmarks (bench/api.py, bench/smtp.py).

A deployment is a store backend and a number of replicas: `sqlite` (the embedded store,
one replica) or `postgresql` (a private cluster started for the run: initdb in a
temporary folder, loopback port, PostgreSQL's default durability, as in bench/store.py)
shared by one or more replicas. Each replica is a real `dlp serve` process with its own
state folder and loopback ports (chosen by the OS), all replicas of a deployment holding
the same keys, as Kubernetes pods mounting one Secret. An admin token is made in the
store before the replicas start; clients spread their load over the replicas
round-robin (client n talks to replica n mod count), which is what a load balancer does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlp.config import Settings  # noqa: E402
from dlp.edm import edm_key_path  # noqa: E402
from dlp.keys import load_or_create_key  # noqa: E402
from dlp.pipeline import hash_key_path  # noqa: E402
from dlp.store import Role, open_store  # noqa: E402
from dlp.store.sqlite import master_key_path  # noqa: E402
from tests.store.pg_cluster import find_bindir, private_cluster  # noqa: E402

__all__ = ["BACKENDS", "Deployment", "Replica", "deployments", "parse_plan", "postgres_version"]

BACKENDS = ("sqlite", "postgresql")
_START_SECONDS = 120.0


@dataclass
class Replica:
    """One running `dlp serve` and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    http: str = ""
    smtp: tuple[str, int] = ("", 0)


@dataclass
class Deployment:
    """Replicas sharing one store, and a token every replica accepts."""

    backend: str
    replicas: list[Replica]
    token: str

    @property
    def name(self) -> str:
        """`backend xN`, as the tables print it."""
        return f"{self.backend} x{len(self.replicas)}"


def parse_plan(backends: str, replicas: str) -> list[tuple[str, int]]:
    """The (backend, replica count) pairs to run; SQLite is one machine's store, so only x1."""
    plan: list[tuple[str, int]] = []
    for backend in backends.split(","):
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
        for count in (int(n) for n in replicas.split(",")):
            if backend == "sqlite" and count > 1:
                print(f"# skipped: sqlite x{count} (the embedded store is not shared between replicas)")
                continue
            plan.append((backend, count))
    return plan


def postgres_version() -> str:
    """The PostgreSQL major version the benchmark runs, or `none`."""
    bindir = find_bindir()
    return bindir.parent.name if bindir else "none"


def _start(folder: Path, env: Mapping[str, str]) -> Replica:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DLP_")}
    environ.update(
        {
            "DLP_SMTP__LISTEN": "127.0.0.1:0",
            "DLP_HTTP__LISTEN": "127.0.0.1:0",
            "DLP_STATE_DIR": str(folder / "state"),
            "DLP_LOG_LEVEL": "INFO",
            **env,
        }
    )
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dlp", "serve"], cwd=folder, env=environ, stdout=out, stderr=out
        )
    replica = Replica(process, log)
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and event.get("event") == "listening":
                    host, _, port = event["smtp"].rpartition(":")
                    replica.smtp = (host, int(port))
                    replica.http = f"http://{event['http']}"
                    return replica
        if process.poll() is not None:
            raise SystemExit(f"dlp serve exited {process.returncode}: {log.read_text()}")
        time.sleep(0.1)
    _stop(replica)
    raise SystemExit(f"dlp serve did not start within {_START_SECONDS:.0f} s: {log.read_text()}")


def _stop(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(60)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()


def _deployment(
    folder: Path, backend: str, count: int, store: str, policies: Path, env: Mapping[str, str]
) -> tuple[Deployment, list[Replica]]:
    shared = folder / "shared"
    for path in (hash_key_path(shared), master_key_path(shared), edm_key_path(shared)):
        load_or_create_key(path)
    for n in range(count):
        shutil.copytree(shared / "keys", folder / f"r{n}" / "state" / "keys")
    opened = open_store(Settings.model_validate({"state_dir": folder / "r0" / "state", "store": store}))
    token, _ = opened.create_token(Role.ADMIN, "bench")
    opened.close()
    started: list[Replica] = []
    settings = {"DLP_STORE": store, "DLP_POLICIES": str(policies), **env}
    for n in range(count):
        started.append(_start(folder / f"r{n}", settings))
    return Deployment(backend, started, token), started


@contextlib.contextmanager
def deployments(
    folder: Path, plan: list[tuple[str, int]], policies: Path, env: Mapping[str, str]
) -> Iterator[list[Deployment]]:
    """Start every deployment of `plan` (one PostgreSQL cluster, a schema per deployment)
    with `env` on top of loopback listeners; stop every replica and the cluster at the end."""
    running: list[Replica] = []
    with contextlib.ExitStack() as stack:
        cluster = None
        if any(backend == "postgresql" for backend, _ in plan):
            bindir = find_bindir()
            if bindir is None:
                raise SystemExit("PostgreSQL is not installed (bash scripts/test-deps)")
            cluster = stack.enter_context(private_cluster(bindir, durable=True))
        try:
            started: list[Deployment] = []
            for index, (backend, count) in enumerate(plan):
                store = "sqlite" if cluster is None or backend == "sqlite" else cluster.create_schema()
                deployment, replicas = _deployment(
                    folder / f"d{index}-{backend}-{count}", backend, count, store, policies, env
                )
                running.extend(replicas)
                started.append(deployment)
            yield started
        finally:
            for replica in running:
                _stop(replica)
