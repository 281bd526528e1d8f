"""The API's request and response shapes, for validation and an accurate OpenAPI document.

Responses are built by `ScanResult.to_dict()` and the store's dicts; these models
describe those shapes (the tests check them against real responses) so `/openapi.json`
tells clients exactly what they get.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActionName",
    "AuditEntry",
    "AuditPage",
    "ErrorBody",
    "FindingOut",
    "IncidentOut",
    "IncidentPage",
    "IncidentPatch",
    "PartOut",
    "QuarantineOut",
    "QuarantinePage",
    "ReadyOut",
    "ReleaseInfo",
    "ReleaseOut",
    "RuleOut",
    "ScanOut",
    "ScanTextIn",
    "TokenCreateIn",
    "TokenCreatedOut",
    "TokenOut",
]

ActionName = Literal["allow", "alert", "quarantine", "block"]


class ErrorBody(BaseModel):
    """Every error: a short name and a sentence for people."""

    error: str = Field(examples=["forbidden"])
    detail: str = Field(examples=["this route needs the reviewer role"])


class RuleOut(BaseModel):
    """A rule that matched, with its explanation."""

    id: str
    action: ActionName
    explanation: str
    mode: str = "enforce"
    severity: str = "medium"
    regulations: list[str] = []


class PartOut(BaseModel):
    """One extracted part: where it is, its sniffed type, size and flags."""

    location: str
    type: str
    size: int
    flags: list[str]


class FindingOut(BaseModel):
    """One finding: masked preview and keyed hash, never the value."""

    detector: str
    category: str
    location: str
    start: int
    end: int
    confidence: Literal["low", "medium", "high"]
    preview: str
    hash: str
    explanation: str = ""
    count: int = 1
    attributes: dict[str, int | str] = {}


class ScanOut(BaseModel):
    """The scan result (the same shape as `dlp scan`), plus what the API did with it."""

    id: str
    action: ActionName
    rules: list[RuleOut]
    parts: list[PartOut]
    findings: list[FindingOut]
    flags: list[str]
    regulations: list[str]
    message: str | None = None
    deadlines_hours: dict[str, int] = {}
    quarantine_id: str | None = Field(
        default=None, description="set when the action is quarantine: the item is stored, hold it"
    )
    incident_id: str | None = Field(default=None, description="set when an incident was recorded")


class ScanTextIn(BaseModel):
    """Text to scan."""

    model_config = ConfigDict(extra="forbid")

    text: str
    name: str | None = Field(default=None, max_length=255, description="a name for explanations")


class ReleaseInfo(BaseModel):
    """Who claimed the release of an item, when it was delivered, how it went."""

    claimed_by: str | None
    claimed_at: str | None = Field(
        description="while `releasing`: when the running claim was made (ISO 8601 UTC); a claim "
        "older than `retention.release_lease_seconds` is stuck (its replica stopped)"
    )
    released_at: str | None
    outcome: str | None
    attempts: int


class QuarantineOut(BaseModel):
    """A quarantined item's metadata with masked findings (never its content)."""

    id: str
    created_at: str
    channel: str
    sender: str | None
    recipients: list[str]
    client: str | None
    item_name: str | None
    size: int
    action: ActionName
    scan_id: str
    status: Literal["held", "releasing", "released", "deleted"]
    rules: list[RuleOut]
    findings: list[FindingOut]
    findings_total: int
    flags: list[str]
    regulations: list[str]
    release: ReleaseInfo


class QuarantinePage(BaseModel):
    """One page of quarantined items, newest first."""

    items: list[QuarantineOut]
    total: int
    limit: int
    offset: int


class ReleaseOut(BaseModel):
    """The outcome of a release and the item afterwards."""

    released: bool
    outcome: str
    item: QuarantineOut


class IncidentOut(BaseModel):
    """One incident: parties, rules, regulations with deadlines, masked findings, status."""

    id: str
    created_at: str
    updated_at: str
    updated_by: str | None
    channel: str
    sender: str | None
    recipients: list[str]
    client: str | None
    item_name: str | None
    action: ActionName
    monitor: bool
    scan_id: str
    quarantine_id: str | None
    status: Literal["open", "resolved", "false-positive"]
    notes: str
    rules: list[RuleOut]
    regulations: list[str]
    deadlines_hours: dict[str, int]
    findings: list[FindingOut]
    findings_total: int
    flags: list[str]


class IncidentPage(BaseModel):
    """One page of incidents, newest first."""

    items: list[IncidentOut]
    total: int
    limit: int
    offset: int


class IncidentPatch(BaseModel):
    """A reviewer's change to an incident: status and/or notes."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "resolved", "false-positive"] | None = None
    notes: str | None = Field(default=None, max_length=10_000)


class AuditEntry(BaseModel):
    """Who did what to what, when."""

    seq: int
    at: str
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]


class AuditPage(BaseModel):
    """One page of the audit log, newest first."""

    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


class TokenOut(BaseModel):
    """A token without its secret."""

    id: str
    name: str
    role: Literal["scanner", "reviewer", "admin"]
    created_at: str
    revoked: bool


class TokenCreateIn(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["scanner", "reviewer", "admin"]
    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")


class TokenCreatedOut(TokenOut):
    """A new token: the secret is shown here once and never again."""

    token: str


class ReadyOut(BaseModel):
    """Readiness: each check and whether it passed."""

    ready: bool
    checks: dict[str, str]
