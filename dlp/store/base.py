"""The store's interface: quarantine, incidents, audit log, tokens and retention.

`Store` is abstract so that the embedded SQLite backend (`dlp.store.sqlite`) can be
joined by a PostgreSQL one for several replicas. Every method blocks (disk, fsync):
async channels call them through `asyncio.to_thread`. Records come back as the plain
dicts the HTTP API returns, so every consumer (API, alert sinks, CLI) sees one shape.

Nothing stored holds a raw matched value: results are kept as `ScanResult.to_dict()`,
which carries masked previews and keyed hashes only; quarantined bytes are encrypted.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dlp.errors import StoreError
from dlp.model import Action, ScanContext, ScanResult
from dlp.store.tokens import Role, TokenInfo

__all__ = [
    "INCIDENT_STATUSES",
    "QUARANTINE_STATUSES",
    "Conflict",
    "IncidentListener",
    "Page",
    "PurgeReport",
    "ReleaseTicket",
    "Store",
    "StoreCounts",
    "context_parties",
    "incident_warranted",
    "iso_time",
    "monitor_matched",
    "parse_time",
    "release_abandoned",
    "release_claimable",
]

log = logging.getLogger(__name__)

QUARANTINE_STATUSES = ("held", "releasing", "released", "deleted")
INCIDENT_STATUSES = ("open", "resolved", "false-positive")

IncidentListener = Callable[[dict[str, Any]], None]


class Conflict(StoreError):
    """The record is not in a state that allows the operation (e.g. already released)."""


@dataclass(frozen=True)
class ReleaseTicket:
    """A claimed release: the item's addressing, owned by whoever claimed it.

    `claim` names this one claim: `finish_release` records the outcome only while the
    claim is still the item's (a claim whose lease expired may have been taken over)."""

    id: str
    channel: str
    sender: str | None
    recipients: tuple[str, ...]
    size: int
    claimed_by: str
    claim: str


@dataclass(frozen=True)
class Page:
    """One page of a listing and the number of records matching the filters."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        """The API's list shape: `{items, total, limit, offset}`."""
        return {"items": self.items, "total": self.total, "limit": self.limit, "offset": self.offset}


@dataclass(frozen=True)
class StoreCounts:
    """What the metrics gauges show."""

    quarantine_items: int
    quarantine_bytes: int
    open_incidents: int


@dataclass(frozen=True)
class PurgeReport:
    """What one retention pass removed, and how many abandoned release claims it ended."""

    quarantine_items: int
    incidents: int
    orphan_files: int
    stale_releases: int = 0


def iso_time(ts: float | None) -> str | None:
    """A UTC timestamp as ISO 8601 with milliseconds and a `Z`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> float:
    """ISO 8601 (naive means UTC) to a UNIX timestamp; `ValueError` if unreadable."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def monitor_matched(result: ScanResult) -> bool:
    """Whether any rule that matched runs in monitor mode."""
    return any(rule.mode == "monitor" for rule in result.verdict.rules)


def release_claimable(status: str, claimed_at: float | None, now: float, lease: float) -> bool:
    """Whether an item may be claimed for release at `now`: held, or being released under
    a claim older than `lease` seconds (the replica that made it died mid-release)."""
    return status == "held" or (status == "releasing" and (claimed_at or 0.0) < now - lease)


def release_abandoned(claimed_by: str | None, claimed_at: float | None, lease: float) -> str:
    """The outcome recorded when a claim outlived its lease and the item went back to `held`."""
    return (
        f"abandoned: the release claimed by {claimed_by} at {iso_time(claimed_at)} outlived its "
        f"{lease:g} s lease; the next hop may have received it before that replica stopped"
    )


def incident_warranted(result: ScanResult) -> bool:
    """Whether a result deserves an incident: any action but allow, or a monitor match."""
    return result.action is not Action.ALLOW or monitor_matched(result)


class Store(abc.ABC):
    """Quarantine, incidents, audit log and API tokens of one installation."""

    def __init__(self) -> None:
        self._listeners: list[IncidentListener] = []

    def on_incident(self, callback: IncidentListener) -> None:
        """Call `callback(incident_dict)` after each incident is committed (alert sinks).

        A failing listener is logged and skipped; it never undoes the incident."""
        self._listeners.append(callback)

    def _notify(self, incident: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(incident)
            except Exception:
                log.exception("incident listener %r failed", listener)

    # quarantine

    @abc.abstractmethod
    def quarantine(self, content: bytes | Path, result: ScanResult, context: ScanContext) -> str:
        """Encrypt and durably store an item (file fsynced, directory fsynced, row
        committed) before returning its quarantine id."""

    @abc.abstractmethod
    def get_quarantine(self, item_id: str) -> dict[str, Any]:
        """One item's metadata with masked findings; `NotFound` if unknown."""

    @abc.abstractmethod
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
        """Items newest first, filtered and paged."""

    @abc.abstractmethod
    def read_quarantine(self, item_id: str) -> Iterator[bytes]:
        """The original bytes, decrypted chunk by chunk; `NotFound` if unknown or deleted
        (checked before the first chunk is asked for)."""

    def read_quarantine_bytes(self, item_id: str) -> bytes:
        """The original bytes in one piece (release of a mail message)."""
        return b"".join(self.read_quarantine(item_id))

    @abc.abstractmethod
    def delete_quarantine(self, item_id: str, actor: str) -> None:
        """Destroy the content and its key material; the metadata stays (status
        `deleted`) until retention removes it."""

    @abc.abstractmethod
    def claim_release(self, item_id: str, actor: str) -> ReleaseTicket:
        """Atomically mark a held item as being released by `actor`, at the current time.

        Raises `Conflict` if it is released, deleted or being released, so two live
        releases never run at once. A claim older than `retention.release_lease_seconds`
        (its replica died mid-release) may be claimed again: delivery is at least once,
        the next hop may have accepted the item before the crash."""

    @abc.abstractmethod
    def finish_release(self, ticket: ReleaseTicket, outcome: str, ok: bool) -> None:
        """Record how a claimed release went: `released` on success, back to `held`
        (retry possible, outcome kept) on failure. `Conflict` if the item is no longer
        being released under this ticket's claim."""

    # incidents

    @abc.abstractmethod
    def record_incident(
        self, result: ScanResult, context: ScanContext, quarantine_id: str | None = None
    ) -> str:
        """Store an incident (masked findings and hashes only), notify listeners after
        commit, return its id. Callers record one when `incident_warranted(result)`."""

    @abc.abstractmethod
    def get_incident(self, incident_id: str) -> dict[str, Any]:
        """One incident; `NotFound` if unknown."""

    @abc.abstractmethod
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
        """Incidents newest first, filtered and paged."""

    @abc.abstractmethod
    def update_incident(
        self, incident_id: str, actor: str, *, status: str | None = None, notes: str | None = None
    ) -> dict[str, Any]:
        """Change status (`open`, `resolved`, `false-positive`) and/or notes."""

    # audit

    @abc.abstractmethod
    def append_audit(
        self, actor: str, action: str, target: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> int:
        """Append one entry (who, what, on what, when); entries are never changed."""

    @abc.abstractmethod
    def list_audit(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """Audit entries newest first."""

    # tokens

    @abc.abstractmethod
    def create_token(self, role: Role, name: str | None = None) -> tuple[str, TokenInfo]:
        """A new token: returns the secret (to show once) and what is stored about it."""

    @abc.abstractmethod
    def verify_token(self, token: str) -> TokenInfo | None:
        """The active token matching `token`, compared by hash in constant time."""

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, without secrets."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id or name; `NotFound` if unknown."""

    @abc.abstractmethod
    def create_first_token(self, role: Role, name: str) -> tuple[str, TokenInfo] | None:
        """A token made only if no active token exists, checked and created atomically
        (several replicas starting at once on one empty store make exactly one); named
        `name`, or a generated name when a revoked token already has it. None if any
        active token exists."""

    @abc.abstractmethod
    def has_tokens(self) -> bool:
        """Whether any active token exists (first start creates an admin token)."""

    # housekeeping

    @abc.abstractmethod
    def purge_expired(self, now: float) -> PurgeReport:
        """Remove quarantine items and incidents past their retention, with content
        files and key material, and content files no record refers to; put items whose
        release claim outlived its lease back to `held` (see `release_abandoned`)."""

    @abc.abstractmethod
    def counts(self) -> StoreCounts:
        """Quarantine items and bytes still held, and open incidents."""

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise `StoreError` unless the store can write right now (readiness)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""


def context_parties(context: ScanContext) -> dict[str, Any]:
    """The parties of a scan as stored: channel, sender, recipients, client."""
    return {
        "channel": context.channel,
        "sender": context.sender,
        "recipients": list(context.recipients),
        "client": context.client,
    }
