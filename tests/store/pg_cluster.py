"""A private PostgreSQL cluster for tests and benchmarks: a real server, no mock.

`initdb` in a temporary folder, listening only on 127.0.0.1 on a port the OS picked,
its unix socket in that folder, trust authentication for the superuser `dlp` (nothing
but loopback can reach it). As root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root). Debian's `postgresql` package provides the binaries
(`scripts/test-deps` installs it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg

__all__ = ["Cluster", "find_bindir", "private_cluster"]

SUPERUSER = "dlp"
_FAST_SETTINGS = ("fsync = off", "full_page_writes = off")


def find_bindir() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding initdb, if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name)
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Cluster:
    """A running private cluster: start, stop, and fresh schemas to hand to stores."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None
    _names = count(1)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL for `database` on this cluster."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(
            str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60",
            "-D", str(self.data), "-l", str(self.root / "server.log"),
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast` ends sessions at once; `immediate` is a crash)."""
        self._run(str(self.bindir / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data))

    def create_schema(self) -> str:
        """A new empty schema, first on the search path of the URL returned (cheaper than
        a database per test: instant, and the tables stay apart all the same)."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"'.encode())
        return f"{self.dsn()}?options=-csearch_path%3D{name}"


@contextlib.contextmanager
def private_cluster(bindir: Path, *, durable: bool = False) -> Iterator[Cluster]:
    """Run a fresh cluster until the block ends, then stop it and remove its folder.

    Not `durable`: fsync and full-page writes are off (tests only; a crash of the test
    machine loses nothing that matters). Durable: PostgreSQL's defaults (benchmarks)."""
    root = Path(tempfile.mkdtemp(prefix="dlp-pg-"))
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "postgres"
        owner = pwd.getpwnam(run_as)
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(bindir, root, _free_port(), run_as)
    try:
        cluster._run(
            str(bindir / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER,
            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"port = {cluster.port}",
            f"unix_socket_directories = '{root}'",
            *(() if durable else _FAST_SETTINGS),
        ]
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write("\n".join(settings) + "\n")
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
