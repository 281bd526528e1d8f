"""Builders for policy tests: evidence with findings, contexts, policy folders from text."""

from __future__ import annotations

import textwrap
from pathlib import Path

from dlp.model import Confidence, Evidence, Finding, PartInfo, ScanContext
from dlp.policy import PolicySet

__all__ = ["INTERNAL", "evidence", "finding", "mail", "policy_from", "upload"]

INTERNAL = ("corp.example",)


def finding(
    detector: str,
    category: str = "pii",
    confidence: str = "high",
    location: str = "message/attachment[1]:export.csv",
    value: str | None = None,
    count: int = 1,
    **attributes: int | str,
) -> Finding:
    """A finding as the detect stage would report it; `value` picks its hash."""
    return Finding(
        detector=detector,
        category=category,
        location=location,
        start=0,
        end=4,
        confidence=Confidence.parse(confidence),
        preview="****",
        hash=f"hmac-sha256:{detector}-{value or 'v'}",
        count=count,
        attributes=attributes,
    )


def evidence(
    *findings: Finding,
    parts: tuple[PartInfo, ...] | None = None,
    size: int = 1000,
    name: str | None = "message",
) -> Evidence:
    """Evidence holding the findings; parts default to one per finding location."""
    if parts is None:
        seen: dict[str, PartInfo] = {}
        for f in findings:
            label = f.location.rpartition(":")[2] if ":" in f.location else None
            seen.setdefault(f.location, PartInfo(f.location, "text/plain", 100, (), label))
        parts = tuple(seen.values()) or (PartInfo("message/body[1]", "text/plain", 100),)
    flags = tuple(sorted({flag for p in parts for flag in p.flags}))
    return Evidence(item_name=name, item_size=size, parts=parts, findings=tuple(findings), flags=flags)


def mail(*recipients: str, sender: str = "alice@corp.example") -> ScanContext:
    """An SMTP context inside corp.example."""
    return ScanContext(channel="smtp", sender=sender, recipients=recipients, internal_domains=INTERNAL)


def upload(client: str | None = "share-gateway") -> ScanContext:
    """An HTTP API context: no recipients."""
    return ScanContext(channel="http", client=client, internal_domains=INTERNAL)


def policy_from(tmp_path: Path, **files: str) -> PolicySet:
    """A policy set loaded from YAML texts, one file per keyword (name.yaml)."""
    folder = tmp_path / "policies"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), "utf-8")
    return PolicySet.load([folder])
