"""Rows as the API sees them, shared by every store backend.

SQLite and PostgreSQL hold the same columns; turning a row into the API's dict (or a
scan result into the stored record) is the same code for both.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from dlp.model import ScanResult
from dlp.store.base import iso_time
from dlp.store.tokens import Role, TokenInfo

__all__ = ["MAX_STORED_FINDINGS", "Row", "incident_dict", "quarantine_dict", "result_record", "token_info"]

MAX_STORED_FINDINGS = 1000


class Row(Protocol):
    """What both drivers' rows offer: values by column name (sqlite3.Row, psycopg dict rows)."""

    def __getitem__(self, key: str) -> Any: ...


def result_record(result: ScanResult) -> dict[str, Any]:
    """The scan result as stored: the public JSON less id and action, findings capped."""
    data = result.to_dict()
    findings = data.get("findings", [])
    data["findings_total"] = len(findings)
    data["findings"] = findings[:MAX_STORED_FINDINGS]
    data.pop("id", None)
    data.pop("action", None)
    return data


def quarantine_dict(row: Row) -> dict[str, Any]:
    """A quarantine row as the API returns it.

    `release.claimed_at` is the time of the running claim, only while the item is
    `releasing`: an operator compares it with `retention.release_lease_seconds` to tell a
    stuck release from one in flight. The claim's id stays in the store (it is what lets
    only its owner finish the release)."""
    result = json.loads(row["result"])
    return {
        "id": row["id"],
        "created_at": iso_time(row["created_at"]),
        "channel": row["channel"],
        "sender": row["sender"],
        "recipients": json.loads(row["recipients"]),
        "client": row["client"],
        "item_name": row["item_name"],
        "size": row["size"],
        "action": row["action"],
        "scan_id": row["scan_id"],
        "status": row["status"],
        "rules": result.get("rules", []),
        "findings": result.get("findings", []),
        "findings_total": result.get("findings_total", 0),
        "flags": result.get("flags", []),
        "regulations": result.get("regulations", []),
        "release": {
            "claimed_by": row["claimed_by"],
            "claimed_at": iso_time(row["claimed_at"]) if row["status"] == "releasing" else None,
            "released_at": iso_time(row["released_at"]),
            "outcome": row["release_outcome"],
            "attempts": row["release_attempts"],
        },
    }


def incident_dict(row: Row) -> dict[str, Any]:
    """An incident row as the API returns it (and alert sinks receive)."""
    result = json.loads(row["result"])
    return {
        "id": row["id"],
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
        "updated_by": row["updated_by"],
        "channel": row["channel"],
        "sender": row["sender"],
        "recipients": json.loads(row["recipients"]),
        "client": row["client"],
        "item_name": row["item_name"],
        "action": row["action"],
        "monitor": bool(row["monitor"]),
        "scan_id": row["scan_id"],
        "quarantine_id": row["quarantine_id"],
        "status": row["status"],
        "notes": row["notes"],
        "rules": result.get("rules", []),
        "regulations": result.get("regulations", []),
        "deadlines_hours": result.get("deadlines_hours", {}),
        "findings": result.get("findings", []),
        "findings_total": result.get("findings_total", 0),
        "flags": result.get("flags", []),
    }


def token_info(row: Row) -> TokenInfo:
    """A token row as a `TokenInfo` (never the secret: only its hash is stored)."""
    return TokenInfo(
        row["id"], row["name"], Role.parse(row["role"]), row["created_at"], row["revoked_at"] is not None
    )
