"""Every Prometheus metric of the service, defined once.

Only the main process records metrics: scan workers return results and the channel
that asked records them, so the default registry is correct without multiprocess mode.
Labels come from small fixed sets (channel, action, detector id, confidence, flag,
reply class); never from content, addresses, file names or message ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

from dlp import __version__
from dlp.model import Action, Confidence, ScanResult

__all__ = [
    "ALERTS_DROPPED",
    "ALERTS_SENT",
    "ALERT_FAILURES",
    "ALERT_SINKS",
    "AUTH_FAILURES",
    "BUILD_INFO",
    "BYTES_SCANNED",
    "CHANNELS",
    "EXTRACTION_FLAGS",
    "FINDINGS",
    "INCIDENTS_OPEN",
    "ITEMS_SCANNED",
    "KNOWN_FLAGS",
    "NEXT_HOP_FAILURES",
    "POLICY_RELOADS",
    "QUARANTINE_BYTES",
    "QUARANTINE_ITEMS",
    "SCAN_DURATION",
    "SCAN_ERRORS",
    "SMTP_REPLIES",
    "STORE_UP",
    "initialise",
    "record_scan",
]

CHANNELS = ("smtp", "http", "cli")
KNOWN_FLAGS = (
    "encrypted",
    "corrupt",
    "unsupported",
    "truncated",
    "limit:depth",
    "limit:size",
    "limit:files",
    "limit:ratio",
    "limit:time",
)

BUILD_INFO = Info("dlp_build", "Version of the running dlp service.")
ITEMS_SCANNED = Counter(
    "dlp_items_scanned_total", "Items scanned, by channel and action.", ["channel", "action"]
)
FINDINGS = Counter("dlp_findings_total", "Findings, by detector and confidence.", ["detector", "confidence"])
SCAN_DURATION = Histogram(
    "dlp_scan_duration_seconds",
    "Time to extract, detect and decide one item.",
    ["channel"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
BYTES_SCANNED = Counter("dlp_scanned_bytes_total", "Bytes of items scanned, by channel.", ["channel"])
EXTRACTION_FLAGS = Counter("dlp_extraction_flags_total", "Items carrying each extraction flag.", ["flag"])
SCAN_ERRORS = Counter("dlp_scan_errors_total", "Scans that failed or timed out, by channel.", ["channel"])
SMTP_REPLIES = Counter("dlp_smtp_replies_total", "Replies to the end of DATA, by class.", ["class"])
NEXT_HOP_FAILURES = Counter(
    "dlp_next_hop_failures_total", "Deliveries the next hop did not accept, by kind.", ["kind"]
)
QUARANTINE_ITEMS = Gauge("dlp_quarantine_items", "Items held in quarantine.")
QUARANTINE_BYTES = Gauge("dlp_quarantine_bytes", "Bytes held in quarantine (before encryption).")
INCIDENTS_OPEN = Gauge("dlp_incidents_open", "Incidents with status open.")
STORE_UP = Gauge("dlp_store_up", "1 when the last read of the store succeeded, 0 when it failed.")
POLICY_RELOADS = Counter("dlp_policy_reloads_total", "Policy reloads, by result.", ["result"])
AUTH_FAILURES = Counter("dlp_auth_failures_total", "Failed API authentications.")
ALERT_SINKS = ("webhook", "syslog")
ALERTS_SENT = Counter("dlp_alerts_sent_total", "Incident alerts delivered, by sink.", ["sink"])
ALERT_FAILURES = Counter(
    "dlp_alert_failures_total", "Incident alerts given up after every retry, by sink.", ["sink"]
)
ALERTS_DROPPED = Counter(
    "dlp_alerts_dropped_total", "Incident alerts dropped on a full queue, by sink.", ["sink"]
)


def initialise(detector_ids: tuple[str, ...] = ()) -> None:
    """Create every labelled series at zero so dashboards and rate() see them from start."""
    BUILD_INFO.info({"version": __version__})
    for channel in CHANNELS:
        SCAN_DURATION.labels(channel)
        BYTES_SCANNED.labels(channel)
        SCAN_ERRORS.labels(channel)
        for action in Action:
            ITEMS_SCANNED.labels(channel, action.label)
    for detector in detector_ids:
        for confidence in Confidence:
            FINDINGS.labels(detector, confidence.label)
    for flag in KNOWN_FLAGS:
        EXTRACTION_FLAGS.labels(flag)
    for reply_class in ("2xx", "4xx", "5xx"):
        SMTP_REPLIES.labels(reply_class)
    for kind in ("temporary", "permanent"):
        NEXT_HOP_FAILURES.labels(kind)
    for result in ("success", "failure"):
        POLICY_RELOADS.labels(result)
    for sink in ALERT_SINKS:
        ALERTS_SENT.labels(sink)
        ALERT_FAILURES.labels(sink)
        ALERTS_DROPPED.labels(sink)


def record_scan(channel: str, result: ScanResult) -> None:
    """Count one finished scan: action, findings, duration, bytes and flags."""
    ITEMS_SCANNED.labels(channel, result.action.label).inc()
    SCAN_DURATION.labels(channel).observe(result.duration_seconds)
    BYTES_SCANNED.labels(channel).inc(result.item_size)
    for finding in result.findings:
        FINDINGS.labels(finding.detector, finding.confidence.label).inc()
    for flag in result.flags:
        if flag in KNOWN_FLAGS:
            EXTRACTION_FLAGS.labels(flag).inc()
