"""The PostgreSQL store's schema as numbered migrations, applied in order by the service.

Each entry is `(version, name, sql)`. Versions only grow: a released migration is never
edited, a change is a new entry. `dlp.store.postgres` applies the pending ones at start
inside one transaction holding an advisory lock, and records each in
`dlp_schema_migrations`, so replicas starting together migrate once.

Columns mirror the SQLite schema (times are UNIX seconds, JSON kept as text exactly as
SQLite keeps it), plus `quarantine_chunks`: the encrypted content in bytea rows, removed
with its item (`ON DELETE CASCADE`) and checked at commit (`DEFERRABLE`), so content is
written before its row knows the size, in the same transaction.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

_INITIAL = """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE quarantine (
    id text PRIMARY KEY,
    created_at double precision NOT NULL,
    channel text NOT NULL,
    sender text,
    recipients text NOT NULL,
    client text,
    item_name text,
    size bigint NOT NULL,
    action text NOT NULL,
    scan_id text NOT NULL,
    result text NOT NULL,
    status text NOT NULL CHECK (status IN ('held', 'releasing', 'released', 'deleted')),
    wrapped_key bytea,
    claimed_by text,
    released_at double precision,
    release_outcome text,
    release_attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX quarantine_created ON quarantine (created_at);
CREATE TABLE quarantine_chunks (
    item_id text NOT NULL REFERENCES quarantine (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (item_id, seq)
);
ALTER TABLE quarantine_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE incidents (
    id text PRIMARY KEY,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    updated_by text,
    channel text NOT NULL,
    sender text,
    recipients text NOT NULL,
    client text,
    item_name text,
    action text NOT NULL,
    monitor boolean NOT NULL,
    scan_id text NOT NULL,
    quarantine_id text,
    result text NOT NULL,
    status text NOT NULL,
    notes text NOT NULL DEFAULT ''
);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE INDEX incidents_status ON incidents (status);
CREATE TABLE audit (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text,
    detail text NOT NULL
);
CREATE TABLE tokens (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    role text NOT NULL,
    hash text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    revoked_at double precision
);
"""

_RELEASE_LEASE = """
ALTER TABLE quarantine ADD COLUMN claimed_at double precision, ADD COLUMN claim text;
UPDATE quarantine SET claimed_at = extract(epoch FROM now()) WHERE status = 'releasing';
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "initial schema", _INITIAL),
    (2, "release claims carry a time and an id (a dead replica's claim expires)", _RELEASE_LEASE),
)
