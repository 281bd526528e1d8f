"""ArcSight Common Event Format (CEF:0) for one incident alert, as SIEMs parse it.

Header fields escape `\\` and `|`; extension values escape `\\`, `=` and line breaks.
Extension keys used: `rt` (ms since epoch), `act` (action), `cat`, `externalId`
(incident id), `suser` (sender), `duser` (recipients), `src` (client address when it is
an IP), `cnt` (findings: `findings_total`, else the sum of their counts), `msg` (the
rules' explanations), and custom strings `cs1` rules, `cs2` detectors, `cs3`
regulations, `cs4` channel. Findings appear only as detector ids and counts: no preview
or hash goes into the SIEM line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from dlp import __version__
from dlp.alerts.payload import CEF_SEVERITY

__all__ = ["cef_message"]

_MAX_LIST = 20
_MAX_MSG = 512


def _header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _ext(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def _strings(values: Any, key: str | None = None) -> list[str]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        return []
    out = []
    for value in values[:_MAX_LIST]:
        if isinstance(value, Mapping):
            value = value.get(key or "id")
        if value is not None:
            out.append(str(value))
    return out


def _millis(value: Any) -> int:
    if isinstance(value, int | float):
        return int(value * 1000)
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = dt.datetime.now(dt.UTC)
    else:
        moment = dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def cef_message(incident: Mapping[str, Any]) -> str:
    """The CEF line for one (already safe) incident."""
    action = str(incident.get("action", "alert"))
    rules = _strings(incident.get("rules"))
    detectors = sorted(set(_strings(incident.get("findings"), "detector")))
    signature_id = rules[0] if rules else f"dlp-{action}"
    name = f"DLP {action}: {', '.join(rules) if rules else 'policy match'}"
    ext: list[tuple[str, str]] = [
        ("rt", str(_millis(incident.get("created_at")))),
        ("act", action),
        ("cat", "dlp/incident"),
        ("externalId", str(incident.get("id", ""))),
    ]
    sender = incident.get("sender")
    if sender:
        ext.append(("suser", str(sender)))
    recipients = _strings(incident.get("recipients"))
    if recipients:
        ext.append(("duser", ",".join(recipients)))
    client = str(incident.get("client") or "")
    with contextlib.suppress(ValueError):
        ext.append(("src", str(ipaddress.ip_address(client))))
    findings = incident.get("findings")
    count = incident.get("findings_total")
    if not isinstance(count, int) and isinstance(findings, Sequence):
        count = sum(int(f.get("count", 1)) for f in findings if isinstance(f, Mapping))
    ext.append(("cnt", str(count)))
    explanations = _strings(incident.get("rules"), "explanation")
    if explanations:
        ext.append(("msg", "; ".join(explanations)[:_MAX_MSG]))
    for index, (label, values) in enumerate(
        (
            ("rules", rules),
            ("detectors", detectors),
            ("regulations", _strings(incident.get("regulations"))),
            ("channel", [str(incident["channel"])] if incident.get("channel") else []),
        ),
        start=1,
    ):
        if values:
            ext.append((f"cs{index}", ",".join(values)))
            ext.append((f"cs{index}Label", label))
    header = "|".join(
        _header(v)
        for v in ("CEF:0", "dlp", "dlp", __version__, signature_id, name, str(CEF_SEVERITY.get(action, 5)))
    )
    return header + "|" + " ".join(f"{key}={_ext(value)}" for key, value in ext)
