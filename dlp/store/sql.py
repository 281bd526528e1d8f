"""The queries both store backends share, written once.

SQLite and PostgreSQL hold the same columns (`dlp.store.sqlite`, `dlp.store.pg_migrations`)
and speak the same SQL for everything but keeping content. `SqlStore` holds those
queries, written with `?` placeholders; a backend supplies its connections (`_rows` for
a read, `_tx` for a write transaction, both turning driver errors into `StoreError`) and
what differs: content, deletion, purge, readiness, and whether a row lock needs
`FOR UPDATE` (PostgreSQL) or comes with the transaction (SQLite's `BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import abc
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from dlp.errors import NotFound, StoreError
from dlp.model import ScanContext, ScanResult, new_id
from dlp.store.base import (
    INCIDENT_STATUSES,
    Conflict,
    Page,
    ReleaseTicket,
    Store,
    StoreCounts,
    context_parties,
    iso_time,
    monitor_matched,
    release_abandoned,
    release_claimable,
)
from dlp.store.rows import Row, incident_dict, quarantine_dict, result_record, token_info
from dlp.store.tokens import Role, TokenInfo, hash_token, hashes_equal, new_token

__all__ = ["INCIDENT_COLUMNS", "QUARANTINE_COLUMNS", "Cursor", "SqlStore", "Transaction", "filters"]

QUARANTINE_COLUMNS = (
    "id, created_at, channel, sender, recipients, client, item_name, size, action, scan_id, result, "
    "status, claimed_by, claimed_at, released_at, release_outcome, release_attempts"
)
INCIDENT_COLUMNS = (
    "id, created_at, updated_at, updated_by, channel, sender, recipients, client, item_name, action, "
    "monitor, scan_id, quarantine_id, result, status, notes"
)


class Cursor(Protocol):
    """What both drivers' cursors offer after `execute`."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction(Protocol):
    """Statements inside one write transaction (`?` placeholders)."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...


def filters(**conditions: Any) -> tuple[str, list[Any]]:
    """A `WHERE` clause (or nothing) for the conditions that are not None; `since` and
    `until` bound `created_at`."""
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in conditions.items():
        if value is None:
            continue
        if column == "since":
            clauses.append("created_at >= ?")
        elif column == "until":
            clauses.append("created_at < ?")
        else:
            clauses.append(f"{column} = ?")
        params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else "", params)


class SqlStore(Store):
    """Records, claims, incidents, audit and tokens in SQL both backends understand."""

    _lock_row = ""

    def __init__(self, lease: float) -> None:
        super().__init__()
        self._lease = lease

    @abc.abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        """The rows of one read."""

    @abc.abstractmethod
    def _tx(self) -> contextlib.AbstractContextManager[Transaction]:
        """One write transaction, committed when the block ends, rolled back on error."""

    @abc.abstractmethod
    def _duplicate(self, error: StoreError) -> bool:
        """Whether a failed write broke a uniqueness constraint."""

    def _clean(self, text: str) -> str:
        """Text as the database will keep it (PostgreSQL cleans what it cannot hold)."""
        return text

    # quarantine

    def get_quarantine(self, item_id: str) -> dict[str, Any]:
        """See `Store.get_quarantine`."""
        rows = self._rows(f"SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE id = ?", (item_id,))
        if not rows:
            raise NotFound(f"no quarantine item {item_id!r}")
        return quarantine_dict(rows[0])

    def list_quarantine(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        action: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """See `Store.list_quarantine`."""
        where, params = filters(status=status, channel=channel, action=action, since=since, until=until)
        total = self._rows(f"SELECT count(*) AS n FROM quarantine{where}", params)[0]["n"]
        rows = self._rows(
            f"SELECT {QUARANTINE_COLUMNS} FROM quarantine{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return Page([quarantine_dict(r) for r in rows], total, limit, offset)

    def claim_release(self, item_id: str, actor: str) -> ReleaseTicket:
        """See `Store.claim_release`: the row is locked, checked and claimed in one
        transaction, so of any number of racing callers (replicas) one wins."""
        now = time.time()
        claim = new_id()
        with self._tx() as tx:
            row = tx.execute(
                "SELECT status, claimed_at, channel, sender, recipients, size FROM quarantine"
                f" WHERE id = ?{self._lock_row}",
                (item_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"no quarantine item {item_id!r}")
            if not release_claimable(row["status"], row["claimed_at"], now, self._lease):
                raise Conflict(f"quarantine item {item_id} is {row['status']}")
            tx.execute(
                "UPDATE quarantine SET status = 'releasing', claimed_by = ?, claimed_at = ?, claim = ?"
                " WHERE id = ?",
                (actor, now, claim, item_id),
            )
        return ReleaseTicket(
            id=item_id,
            channel=row["channel"],
            sender=row["sender"],
            recipients=tuple(json.loads(row["recipients"])),
            size=row["size"],
            claimed_by=actor,
            claim=claim,
        )

    def finish_release(self, ticket: ReleaseTicket, outcome: str, ok: bool) -> None:
        """See `Store.finish_release`."""
        with self._tx() as tx:
            updated = tx.execute(
                "UPDATE quarantine SET status = ?, released_at = ?, release_outcome = ?,"
                " release_attempts = release_attempts + 1, claim = NULL"
                " WHERE id = ? AND status = 'releasing' AND claim = ?",
                ("released" if ok else "held", time.time() if ok else None, outcome, ticket.id, ticket.claim),
            ).rowcount
            if updated != 1:
                raise Conflict(f"quarantine item {ticket.id} is no longer being released under this claim")

    def _end_abandoned_claims(self, tx: Transaction, now: float) -> int:
        """Put items whose release claim outlived the lease back to `held` (purge pass)."""
        stale = tx.execute(
            "SELECT id, claimed_by, claimed_at FROM quarantine"
            f" WHERE status = 'releasing' AND claimed_at < ?{self._lock_row}",
            (now - self._lease,),
        ).fetchall()
        for row in stale:
            tx.execute(
                "UPDATE quarantine SET status = 'held', claim = NULL, release_outcome = ?,"
                " release_attempts = release_attempts + 1 WHERE id = ?",
                (release_abandoned(row["claimed_by"], row["claimed_at"], self._lease), row["id"]),
            )
        return len(stale)

    # incidents

    def record_incident(
        self, result: ScanResult, context: ScanContext, quarantine_id: str | None = None
    ) -> str:
        """See `Store.record_incident`."""
        incident_id = new_id()
        now = time.time()
        parties = context_parties(context)
        record = result_record(result)
        record["deadlines_hours"] = dict(result.verdict.deadlines)
        with self._tx() as tx:
            tx.execute(
                f"INSERT INTO incidents ({INCIDENT_COLUMNS})"
                " VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', '')",
                (
                    incident_id,
                    now,
                    now,
                    parties["channel"],
                    parties["sender"],
                    json.dumps(parties["recipients"]),
                    parties["client"],
                    result.item_name,
                    result.action.label,
                    monitor_matched(result),
                    result.id,
                    quarantine_id,
                    json.dumps(record),
                ),
            )
        self._notify(self.get_incident(incident_id))
        return incident_id

    def get_incident(self, incident_id: str) -> dict[str, Any]:
        """See `Store.get_incident`."""
        rows = self._rows(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            raise NotFound(f"no incident {incident_id!r}")
        return incident_dict(rows[0])

    def list_incidents(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        action: str | None = None,
        monitor: bool | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """See `Store.list_incidents`."""
        where, params = filters(
            status=status, channel=channel, action=action, monitor=monitor, since=since, until=until
        )
        total = self._rows(f"SELECT count(*) AS n FROM incidents{where}", params)[0]["n"]
        rows = self._rows(
            f"SELECT {INCIDENT_COLUMNS} FROM incidents{where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return Page([incident_dict(r) for r in rows], total, limit, offset)

    def update_incident(
        self, incident_id: str, actor: str, *, status: str | None = None, notes: str | None = None
    ) -> dict[str, Any]:
        """See `Store.update_incident`."""
        if status is not None and status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(INCIDENT_STATUSES)}")
        with self._tx() as tx:
            updated = tx.execute(
                "UPDATE incidents SET status = coalesce(?, status), notes = coalesce(?, notes),"
                " updated_at = ?, updated_by = ? WHERE id = ?",
                (status, notes, time.time(), actor, incident_id),
            ).rowcount
            if updated != 1:
                raise NotFound(f"no incident {incident_id!r}")
        return self.get_incident(incident_id)

    # audit

    def append_audit(
        self, actor: str, action: str, target: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> int:
        """See `Store.append_audit`."""
        with self._tx() as tx:
            row = tx.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?) RETURNING seq",
                (time.time(), actor, action, target, json.dumps(dict(detail or {}))),
            ).fetchone()
        return int(row["seq"])

    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """See `Store.list_audit`."""
        where, params = filters(actor=actor, action=action, target=target)
        total = self._rows(f"SELECT count(*) AS n FROM audit{where}", params)[0]["n"]
        rows = self._rows(
            f"SELECT seq, at, actor, action, target, detail FROM audit{where} ORDER BY seq DESC"
            " LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        items = [
            {
                "seq": r["seq"],
                "at": iso_time(r["at"]),
                "actor": r["actor"],
                "action": r["action"],
                "target": r["target"],
                "detail": json.loads(r["detail"]),
            }
            for r in rows
        ]
        return Page(items, total, limit, offset)

    # tokens

    def create_token(self, role: Role, name: str | None = None) -> tuple[str, TokenInfo]:
        """See `Store.create_token`."""
        token_id = new_id()
        name = self._clean(name or f"{role.label}-{token_id[-8:].lower()}")
        secret = new_token()
        now = time.time()
        try:
            with self._tx() as tx:
                tx.execute(
                    "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (token_id, name, role.label, hash_token(secret), now),
                )
        except StoreError as exc:
            if self._duplicate(exc):
                raise Conflict(f"a token named {name!r} already exists") from exc
            raise
        return secret, TokenInfo(token_id, name, role, now)

    def verify_token(self, token: str) -> TokenInfo | None:
        """See `Store.verify_token`: read from the database each time (revocation is immediate)."""
        presented = hash_token(token)
        rows = self._rows(
            "SELECT id, name, role, hash, created_at, revoked_at FROM tokens"
            " WHERE hash = ? AND revoked_at IS NULL",
            (presented,),
        )
        if not rows or not hashes_equal(rows[0]["hash"], presented):
            return None
        return token_info(rows[0])

    def list_tokens(self) -> list[TokenInfo]:
        """See `Store.list_tokens`."""
        rows = self._rows("SELECT id, name, role, created_at, revoked_at FROM tokens ORDER BY id")
        return [token_info(r) for r in rows]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """See `Store.revoke_token`."""
        with self._tx() as tx:
            rows = tx.execute(
                "UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? OR name = ?"
                " RETURNING id, name, role, created_at, revoked_at",
                (time.time(), token_id, token_id),
            ).fetchall()
            if len(rows) != 1:
                raise NotFound(f"no token {token_id!r}")
        return token_info(rows[0])

    def has_tokens(self) -> bool:
        """See `Store.has_tokens`."""
        return bool(self._rows("SELECT 1 AS one FROM tokens WHERE revoked_at IS NULL LIMIT 1"))

    # housekeeping

    def counts(self) -> StoreCounts:
        """See `Store.counts`."""
        held = self._rows(
            "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM quarantine WHERE status != 'deleted'"
        )
        open_incidents = self._rows("SELECT count(*) AS n FROM incidents WHERE status = 'open'")
        return StoreCounts(held[0]["n"], int(held[0]["bytes"]), open_incidents[0]["n"])
