"""The shared store for several replicas: PostgreSQL through psycopg 3.

Selected by `store: postgresql://user@host/db` (or `DLP_STORE`). Everything a replica
must share lives in the database: quarantine rows and their encrypted content (bytea
rows of `quarantine_chunks`, encrypted exactly as the SQLite backend's files with
`dlp.store.crypto`), incidents, the audit log and API tokens. The master key that wraps
each item's data key is read from the same key file as on SQLite
(`<state_dir>/keys/quarantine.key`); replicas mount one Kubernetes Secret there. A
keyed check value in the `meta` table makes a replica with a different key refuse to
start instead of quarantining mail nobody else could read.

Start: pending migrations (`dlp.store.pg_migrations`) are applied in one transaction
holding an advisory lock, so replicas starting together migrate once. Once the schema is
current no DDL runs, so the service may then use a role without `CREATE`.

Sharing rules: `quarantine()` returns after COMMIT (content and row in one
transaction); `claim_release` locks the row (`SELECT ... FOR UPDATE`) before claiming
it, so of two replicas racing for an item exactly one wins, and a claim whose lease
expired (its replica died) is taken over by one replica only; retention runs in one transaction
under a transaction-scoped advisory lock (`pg_try_advisory_xact_lock`): one replica at a
time, and a replica that dies mid-purge leaves nothing half done. Tokens are looked up
in the database on every request, so creation and revocation count everywhere at once.

Connections: a small pool of autocommit connections (writes use explicit
transactions). A session whose `synchronous_commit` was configured `off` is set back to
`on`: a COMMIT that a database crash could undo would break the relay's promise. When
PostgreSQL is down every call raises `StoreError` at once (the relay answers 4xx, the API
503); a connection idle for a while is pinged before use and a broken one is dropped, so
service resumes with the first call after the database returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from dlp.config import Settings
from dlp.errors import ConfigError, NotFound, StoreError
from dlp.keys import load_or_create_key
from dlp.model import ScanContext, ScanResult, new_id
from dlp.store.base import Conflict, PurgeReport, context_parties
from dlp.store.crypto import CHUNK_SIZE, decrypt_stream, encrypt_stream, new_data_key, unwrap_key, wrap_key
from dlp.store.pg_migrations import MIGRATIONS
from dlp.store.rows import Row, result_record
from dlp.store.sql import SqlStore
from dlp.store.sqlite import master_key_path
from dlp.store.tokens import Role, TokenInfo, hash_token, new_token

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["POOL_SIZE", "PostgresStore"]

log = logging.getLogger(__name__)

POOL_SIZE = 10
_CONNECT_TIMEOUT_SECONDS = 5
_POOL_WAIT_SECONDS = 10.0
_PING_AFTER_IDLE_SECONDS = 1.0
_LOCK_SPACE = 0x646C70
_LOCK_MIGRATE = 1
_LOCK_RETENTION = 2
_LOCK_FIRST_TOKEN = 3
_KEY_CHECK = b"dlp quarantine master key check"

Connection = psycopg.Connection[DictRow]
Cursor = psycopg.Cursor[DictRow]


def _describe(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return f"PostgreSQL: {type(exc).__name__}: {text[0] if text else exc.sqlstate}"


@overload
def _text(value: str) -> str: ...
@overload
def _text(value: None) -> None: ...
def _text(value: str | None) -> str | None:
    """PostgreSQL text holds no NUL and only valid UTF-8: hostile input (envelopes, ids in
    URLs) is cleaned, so it is stored or not found rather than an error."""
    if value is None:
        return None
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


class _Pool:
    """At most `size` autocommit connections; broken ones are dropped, idle ones pinged."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[Connection, float]] = []
        self._lock = threading.Lock()
        self.closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A live connection for one operation; psycopg errors come out as `StoreError`."""
        if self.closed:
            raise StoreError("the store is closed")
        if not self._slots.acquire(timeout=_POOL_WAIT_SECONDS):
            raise StoreError(f"no PostgreSQL connection free within {_POOL_WAIT_SECONDS:.0f} s")
        try:
            conn = self._take()
            try:
                yield conn
            except psycopg.Error as exc:
                raise StoreError(_describe(exc)) from exc
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def _take(self) -> Connection:
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, since = self._idle.pop()
            if time.monotonic() - since < _PING_AFTER_IDLE_SECONDS:
                return conn
            try:
                conn.execute("")
                return conn
            except psycopg.Error:
                conn.close()
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_describe(exc)}") from exc
        try:
            durability = conn.execute("SHOW synchronous_commit").fetchone()
            if durability is not None and durability["synchronous_commit"] == "off":
                conn.execute("SET synchronous_commit = on")
        except psycopg.Error as exc:
            conn.close()
            raise StoreError(f"cannot set up a PostgreSQL session: {_describe(exc)}") from exc
        return conn

    def _give_back(self, conn: Connection) -> None:
        reusable = (
            not self.closed
            and not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if not reusable:
            conn.close()
            return
        with self._lock:
            self._idle.append((conn, time.monotonic()))

    def close(self) -> None:
        """Close the idle connections; busy ones close when given back."""
        self.closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


class _ChunkSink(io.RawIOBase):
    """Encrypted content written as `quarantine_chunks` rows inside the caller's transaction."""

    def __init__(self, cursor: Cursor, item_id: str) -> None:
        super().__init__()
        self._cursor = cursor
        self._item_id = item_id
        self._seq = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        block = bytes(data)
        self._cursor.execute(
            "INSERT INTO quarantine_chunks (item_id, seq, data) VALUES (%s, %s, %b)",
            (self._item_id, self._seq, block),
        )
        self._seq += 1
        return len(block)


class _ChunkSource(io.RawIOBase):
    """An item's encrypted content read back one row at a time (bounded memory)."""

    def __init__(self, fetch: Callable[[int], bytes | None]) -> None:
        super().__init__()
        self._fetch = fetch
        self._seq = 0
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            if self._done:
                return 0
            row = self._fetch(self._seq)
            self._seq += 1
            if row is None:
                self._done = True
                return 0
            self._pending = memoryview(row)
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _plain_chunks(content: bytes | Path) -> Iterator[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    try:
        with content.open("rb") as handle:
            while block := handle.read(CHUNK_SIZE):
                yield block
    except OSError as exc:
        raise StoreError(f"cannot read quarantine content: {exc.strerror}") from exc


def _key_check(master: bytes) -> str:
    return hmac.new(master, _KEY_CHECK, hashlib.sha256).hexdigest()


class _Translated:
    """A transaction's cursor taking the shared queries' `?` placeholders, with every text
    parameter cleaned to what PostgreSQL text can hold (`_text`)."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return self._cursor.execute(_placeholders(sql), _cleaned(params))


def _placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


def _cleaned(params: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_text(p) if isinstance(p, str) else p for p in params)


class PostgresStore(SqlStore):
    """The shared backend for several replicas (see the module docstring); the queries it
    shares with SQLite are `dlp.store.sql.SqlStore`'s."""

    _lock_row = " FOR UPDATE"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.retention.release_lease_seconds)
        self._settings = settings
        try:
            params = conninfo_to_dict(settings.store)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"store: not a usable PostgreSQL URL ({exc})") from exc
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT_SECONDS)
        params.setdefault("application_name", "dlp")
        self._master = load_or_create_key(master_key_path(settings.state_dir))
        self._pool = _Pool(make_conninfo("", **params), POOL_SIZE)
        self._migrate()

    # connections and transactions

    def _migrate(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _LOCK_MIGRATE))
            present = cur.execute("SELECT to_regclass('dlp_schema_migrations') AS t").fetchone()
            if present is None or present["t"] is None:
                cur.execute(
                    "CREATE TABLE dlp_schema_migrations (version integer PRIMARY KEY,"
                    " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            applied = {r["version"] for r in cur.execute("SELECT version FROM dlp_schema_migrations")}
            for version, name, sql in MIGRATIONS:
                if version in applied:
                    continue
                cur.execute(sql.encode())
                cur.execute(
                    "INSERT INTO dlp_schema_migrations (version, name) VALUES (%s, %s)", (version, name)
                )
                log.info("store schema migrated to version %d (%s)", version, name)
            newer = sorted(applied - {version for version, _, _ in MIGRATIONS})
            if newer:
                log.warning("the store schema has versions %s this release does not know", newer)
            check = _key_check(self._master)
            cur.execute(
                "INSERT INTO meta (key, value) VALUES ('quarantine_key_check', %s) ON CONFLICT DO NOTHING",
                (check,),
            )
            stored = cur.execute("SELECT value FROM meta WHERE key = 'quarantine_key_check'").fetchone()
        if stored is None or not hmac.compare_digest(stored["value"], check):
            raise ConfigError(
                f"the quarantine key {master_key_path(self._settings.state_dir)} differs from the one "
                "this database was set up with: every replica must mount the same key"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Translated]:
        with self._transaction() as cur:
            yield _Translated(cur)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        with self._pool.connection() as conn:
            return conn.execute(_placeholders(sql), _cleaned(params)).fetchall()

    def _duplicate(self, error: StoreError) -> bool:
        return isinstance(error.__cause__, pg_errors.UniqueViolation)

    def _clean(self, text: str) -> str:
        return _text(text)

    # quarantine

    def quarantine(self, content: bytes | Path, result: ScanResult, context: ScanContext) -> str:
        """See `Store.quarantine`: content and row in one transaction, returned after COMMIT."""
        item_id = new_id()
        data_key = new_data_key()
        wrapped = wrap_key(self._master, data_key, item_id)
        parties = context_parties(context)
        with self._transaction() as cur:
            with io.BufferedWriter(_ChunkSink(cur, item_id), buffer_size=CHUNK_SIZE) as sink:
                size = encrypt_stream(data_key, item_id, _plain_chunks(content), sink)
            cur.execute(
                "INSERT INTO quarantine (id, created_at, channel, sender, recipients, client, item_name,"
                " size, action, scan_id, result, status, wrapped_key)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'held', %b)",
                (
                    item_id,
                    time.time(),
                    _text(parties["channel"]),
                    _text(parties["sender"]),
                    json.dumps(parties["recipients"]),
                    _text(parties["client"]),
                    _text(result.item_name),
                    size,
                    result.action.label,
                    result.id,
                    json.dumps(result_record(result)),
                    wrapped,
                ),
            )
        return item_id

    def read_quarantine(self, item_id: str) -> Iterator[bytes]:
        """See `Store.read_quarantine`."""
        rows = self._rows("SELECT wrapped_key FROM quarantine WHERE id = ?", (item_id,))
        if not rows:
            raise NotFound(f"no quarantine item {item_id!r}")
        if rows[0]["wrapped_key"] is None:
            raise NotFound(f"the content of quarantine item {item_id!r} was deleted")
        data_key = unwrap_key(self._master, bytes(rows[0]["wrapped_key"]), item_id)
        return self._decrypted(item_id, data_key)

    def _fetch_chunk(self, item_id: str, seq: int) -> bytes | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT data FROM quarantine_chunks WHERE item_id = %s AND seq = %s",
                (item_id, seq),
                binary=True,
            ).fetchone()
        return None if row is None else bytes(row["data"])

    def _decrypted(self, item_id: str, data_key: bytes) -> Iterator[bytes]:
        source = _ChunkSource(lambda seq: self._fetch_chunk(item_id, seq))
        with io.BufferedReader(source, buffer_size=CHUNK_SIZE) as reader:
            yield from decrypt_stream(data_key, item_id, reader)

    def delete_quarantine(self, item_id: str, actor: str) -> None:
        """See `Store.delete_quarantine`: row, key material and content in one transaction."""
        with self._transaction() as cur:
            row = cur.execute(
                "SELECT status FROM quarantine WHERE id = %s FOR UPDATE", (_text(item_id),)
            ).fetchone()
            if row is None:
                raise NotFound(f"no quarantine item {item_id!r}")
            if row["status"] == "releasing":
                raise Conflict(f"quarantine item {item_id} is being released")
            cur.execute(
                "UPDATE quarantine SET status = 'deleted', wrapped_key = NULL, claimed_by = %s WHERE id = %s",
                (_text(actor), item_id),
            )
            cur.execute("DELETE FROM quarantine_chunks WHERE item_id = %s", (_text(item_id),))

    # tokens

    def create_first_token(self, role: Role, name: str) -> tuple[str, TokenInfo] | None:
        """See `Store.create_first_token`: check and insert in one transaction holding an
        advisory lock, so a replica waiting on it sees the other's token once it may go on."""
        token_id = new_id()
        name = _text(name)
        secret = new_token()
        now = time.time()
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _LOCK_FIRST_TOKEN))
            if cur.execute("SELECT 1 FROM tokens WHERE revoked_at IS NULL LIMIT 1").fetchone():
                return None
            if cur.execute("SELECT 1 FROM tokens WHERE name = %s", (name,)).fetchone():
                name = f"{role.label}-{token_id[-8:].lower()}"
            cur.execute(
                "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (%s, %s, %s, %s, %s)",
                (token_id, name, role.label, hash_token(secret), now),
            )
        return secret, TokenInfo(token_id, name, role, now)

    # housekeeping

    def purge_expired(self, now: float) -> PurgeReport:
        """See `Store.purge_expired`: one transaction under an advisory lock, so one replica
        purges at a time (the others skip the pass) and a dead one leaves nothing half done.

        Content rows go with their item (`ON DELETE CASCADE`); a quarantine write that
        failed rolled back whole, so there are never orphan chunks to collect."""
        retention = self._settings.retention
        with self._transaction() as cur:
            locked = cur.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s) AS locked", (_LOCK_SPACE, _LOCK_RETENTION)
            ).fetchone()
            if locked is None or not locked["locked"]:
                log.debug("retention pass skipped: another replica is purging")
                return PurgeReport(0, 0, 0)
            cur.execute(
                "DELETE FROM quarantine WHERE created_at < %s", (now - retention.quarantine_days * 86400.0,)
            )
            items = cur.rowcount
            cur.execute(
                "DELETE FROM incidents WHERE created_at < %s", (now - retention.incidents_days * 86400.0,)
            )
            incidents = cur.rowcount
            stale = self._end_abandoned_claims(_Translated(cur), now)
        return PurgeReport(items, incidents, 0, stale)

    def check_writable(self) -> None:
        """See `Store.check_writable`: a committed write, so readiness fails while the
        database is down or read-only (a failed-over standby)."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(time.time()),),
            )

    def close(self) -> None:
        """See `Store.close`."""
        self._pool.close()
