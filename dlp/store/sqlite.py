"""The embedded store: one SQLite file in WAL mode plus encrypted content files.

Layout under the state folder (folders 0700, files 0600):
`dlp.sqlite3` (+ `-wal`, `-shm`), `quarantine/<id>.bin` (encrypted content),
`keys/quarantine.key` (master key wrapping each item's data key).

Each thread gets its own connection (WAL lets readers run beside the one writer);
writes take the write lock up front (`BEGIN IMMEDIATE`) and commit with
`synchronous=FULL`, so a returned quarantine id survives a power cut. `secure_delete`
overwrites removed rows, so purged key material does not linger in free pages.

Schema: `_SCHEMA` is version 1; later versions are `_MIGRATIONS`, applied at open in one
write transaction and counted in `PRAGMA user_version`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dlp.config import Settings
from dlp.errors import NotFound, StoreError
from dlp.keys import load_or_create_key
from dlp.model import ScanContext, ScanResult, new_id
from dlp.store.base import Conflict, PurgeReport, context_parties
from dlp.store.crypto import CHUNK_SIZE, decrypt_stream, encrypt_stream, new_data_key, unwrap_key, wrap_key
from dlp.store.rows import Row, result_record
from dlp.store.sql import SqlStore
from dlp.store.tokens import Role, TokenInfo, hash_token, new_token

__all__ = ["DB_NAME", "SqliteStore", "master_key_path"]

DB_NAME = "dlp.sqlite3"
_ORPHAN_GRACE_SECONDS = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    channel TEXT NOT NULL,
    sender TEXT,
    recipients TEXT NOT NULL,
    client TEXT,
    item_name TEXT,
    size INTEGER NOT NULL,
    action TEXT NOT NULL,
    scan_id TEXT NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    wrapped_key BLOB,
    claimed_by TEXT,
    released_at REAL,
    release_outcome TEXT,
    release_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS quarantine_created ON quarantine (created_at);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT,
    channel TEXT NOT NULL,
    sender TEXT,
    recipients TEXT NOT NULL,
    client TEXT,
    item_name TEXT,
    action TEXT NOT NULL,
    monitor INTEGER NOT NULL,
    scan_id TEXT NOT NULL,
    quarantine_id TEXT,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS incidents_created ON incidents (created_at);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents (status);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""

_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        2,
        (
            "ALTER TABLE quarantine ADD COLUMN claimed_at REAL",
            "ALTER TABLE quarantine ADD COLUMN claim TEXT",
            "UPDATE quarantine SET claimed_at = (julianday('now') - 2440587.5) * 86400.0"
            " WHERE status = 'releasing'",
        ),
    ),
)


def master_key_path(state_dir: Path) -> Path:
    """The quarantine master key file under the state folder."""
    return state_dir / "keys" / "quarantine.key"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _content_chunks(content: bytes | Path) -> Iterator[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    with content.open("rb") as handle:
        while block := handle.read(CHUNK_SIZE):
            yield block


class SqliteStore(SqlStore):
    """The embedded default backend (see the module docstring); the queries it shares
    with PostgreSQL are `dlp.store.sql.SqlStore`'s."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.retention.release_lease_seconds)
        self._settings = settings
        self._root = settings.state_dir
        self._content_dir = self._root / "quarantine"
        _private_dir(self._root)
        _private_dir(self._content_dir)
        self._db_path = self._root / DB_NAME
        if not self._db_path.exists():
            os.close(os.open(self._db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._master = load_or_create_key(master_key_path(self._root))
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        self._migrate()

    # connections and transactions

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self._db_path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA secure_delete=ON")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self._db_path}: {exc}") from exc
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for target, statements in _MIGRATIONS:
                if target > version:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {target:d}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"store busy or not writable: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"store write failed: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StoreError(f"commit failed: {exc}") from exc

    def _tx(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store query failed: {exc}") from exc

    def _duplicate(self, error: StoreError) -> bool:
        return isinstance(error.__cause__, sqlite3.IntegrityError)

    def _content_path(self, item_id: str) -> Path:
        if not item_id.isalnum():
            raise NotFound(f"no quarantine item {item_id!r}")
        return self._content_dir / f"{item_id}.bin"

    # quarantine

    def quarantine(self, content: bytes | Path, result: ScanResult, context: ScanContext) -> str:
        """See `Store.quarantine`."""
        item_id = new_id()
        data_key = new_data_key()
        wrapped = wrap_key(self._master, data_key, item_id)
        final = self._content_path(item_id)
        temporary = final.with_suffix(".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                size = encrypt_stream(data_key, item_id, _content_chunks(content), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, final)
            _fsync_dir(self._content_dir)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise StoreError(f"cannot write quarantine content: {exc.strerror}") from exc
        parties = context_parties(context)
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO quarantine (id, created_at, channel, sender, recipients, client, item_name,"
                    " size, action, scan_id, result, status, wrapped_key)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held', ?)",
                    (
                        item_id,
                        time.time(),
                        parties["channel"],
                        parties["sender"],
                        json.dumps(parties["recipients"]),
                        parties["client"],
                        result.item_name,
                        size,
                        result.action.label,
                        result.id,
                        json.dumps(result_record(result)),
                        wrapped,
                    ),
                )
        except (StoreError, sqlite3.Error) as exc:
            final.unlink(missing_ok=True)
            raise StoreError(f"cannot record quarantine item: {exc}") from exc
        return item_id

    def read_quarantine(self, item_id: str) -> Iterator[bytes]:
        """See `Store.read_quarantine`."""
        rows = self._rows("SELECT wrapped_key FROM quarantine WHERE id = ?", (item_id,))
        if not rows:
            raise NotFound(f"no quarantine item {item_id!r}")
        if rows[0]["wrapped_key"] is None:
            raise NotFound(f"the content of quarantine item {item_id!r} was deleted")
        data_key = unwrap_key(self._master, rows[0]["wrapped_key"], item_id)
        try:
            handle = self._content_path(item_id).open("rb")
        except OSError as exc:
            raise StoreError(f"content of quarantine item {item_id!r} is missing") from exc
        return self._decrypted(handle, data_key, item_id)

    @staticmethod
    def _decrypted(handle: Any, data_key: bytes, item_id: str) -> Iterator[bytes]:
        with handle:
            yield from decrypt_stream(data_key, item_id, handle)

    def delete_quarantine(self, item_id: str, actor: str) -> None:
        """See `Store.delete_quarantine`."""
        with self._write() as conn:
            row = conn.execute("SELECT status FROM quarantine WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise NotFound(f"no quarantine item {item_id!r}")
            if row["status"] == "releasing":
                raise Conflict(f"quarantine item {item_id} is being released")
            conn.execute(
                "UPDATE quarantine SET status = 'deleted', wrapped_key = NULL, claimed_by = ? WHERE id = ?",
                (actor, item_id),
            )
        self._content_path(item_id).unlink(missing_ok=True)

    # tokens

    def create_first_token(self, role: Role, name: str) -> tuple[str, TokenInfo] | None:
        """See `Store.create_first_token`: check and insert in one BEGIN IMMEDIATE transaction."""
        token_id = new_id()
        secret = new_token()
        now = time.time()
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE revoked_at IS NULL LIMIT 1").fetchone():
                return None
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                name = f"{role.label}-{token_id[-8:].lower()}"
            conn.execute(
                "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_id, name, role.label, hash_token(secret), now),
            )
        return secret, TokenInfo(token_id, name, role, now)

    # housekeeping

    def purge_expired(self, now: float) -> PurgeReport:
        """See `Store.purge_expired`."""
        retention = self._settings.retention
        quarantine_cutoff = now - retention.quarantine_days * 86400.0
        incident_cutoff = now - retention.incidents_days * 86400.0
        with self._write() as conn:
            expired = [
                r["id"]
                for r in conn.execute("SELECT id FROM quarantine WHERE created_at < ?", (quarantine_cutoff,))
            ]
            conn.executemany("DELETE FROM quarantine WHERE id = ?", [(i,) for i in expired])
            deleted = conn.execute("DELETE FROM incidents WHERE created_at < ?", (incident_cutoff,))
            incidents = deleted.rowcount
            stale = self._end_abandoned_claims(conn, now)
        for item_id in expired:
            self._content_path(item_id).unlink(missing_ok=True)
        orphans = self._purge_orphans(now)
        if expired or incidents:
            with contextlib.suppress(sqlite3.Error):
                self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return PurgeReport(len(expired), incidents, orphans, stale)

    def _purge_orphans(self, now: float) -> int:
        known = {r["id"] for r in self._rows("SELECT id FROM quarantine WHERE wrapped_key IS NOT NULL")}
        removed = 0
        for path in self._content_dir.iterdir():
            if path.stem in known:
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > _ORPHAN_GRACE_SECONDS:
                    path.unlink()
                    removed += 1
        return removed

    def check_writable(self) -> None:
        """See `Store.check_writable`."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('ready_probe', ?)", (str(time.time()),)
            )
        if not os.access(self._content_dir, os.W_OK):
            raise StoreError(f"{self._content_dir} is not writable")

    def close(self) -> None:
        """See `Store.close`."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
