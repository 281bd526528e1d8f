"""Where the service keeps what it must remember: quarantine, incidents, audit, tokens.

`open_store(settings)` returns the configured backend (embedded SQLite by default) behind
the abstract `Store`; `run_retention` is the periodic purge the serve command starts.
"""

from __future__ import annotations

from dlp.config import Settings
from dlp.errors import ConfigError
from dlp.store.base import (
    INCIDENT_STATUSES,
    QUARANTINE_STATUSES,
    Conflict,
    IncidentListener,
    Page,
    PurgeReport,
    ReleaseTicket,
    Store,
    StoreCounts,
    incident_warranted,
    iso_time,
    monitor_matched,
    parse_time,
)
from dlp.store.retention import run_retention
from dlp.store.tokens import Role, TokenInfo

__all__ = [
    "INCIDENT_STATUSES",
    "QUARANTINE_STATUSES",
    "Conflict",
    "IncidentListener",
    "Page",
    "PurgeReport",
    "ReleaseTicket",
    "Role",
    "Store",
    "StoreCounts",
    "TokenInfo",
    "incident_warranted",
    "iso_time",
    "monitor_matched",
    "open_store",
    "parse_time",
    "run_retention",
]


def open_store(settings: Settings) -> Store:
    """The store named by `settings.store` (`sqlite` or a `postgresql://` URL), created on first use."""
    if settings.store == "sqlite":
        from dlp.store.sqlite import SqliteStore

        return SqliteStore(settings)
    if settings.store.startswith(("postgresql://", "postgres://")):
        from dlp.store.postgres import PostgresStore

        return PostgresStore(settings)
    raise ConfigError(f"store '{settings.store}' is not supported (sqlite or postgresql://...)")
