"""The metrics exposition passes `promtool check metrics`, and every series starts at zero."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import REGISTRY, generate_latest

from dlp import metrics
from dlp.model import Action, Confidence, Finding, ScanResult, Verdict


def result(action: Action, flags: tuple[str, ...] = ()) -> ScanResult:
    finding = Finding(
        detector="credit-card",
        category="financial",
        location="message/body",
        start=0,
        end=19,
        confidence=Confidence.HIGH,
        preview="4111 **** **** 1111",
        hash="hmac-sha256:00",
    )
    return ScanResult(
        id="01JDQ3Z5X9K2M4N6P8R0S2T4V6",
        verdict=Verdict(action=action),
        parts=(),
        findings=(finding,),
        flags=flags,
        item_size=2048,
        duration_seconds=0.012,
    )


def test_series_exist_at_zero_after_initialise() -> None:
    metrics.initialise(detector_ids=("credit-card",))
    for name, labels in [
        ("dlp_items_scanned_total", {"channel": "smtp", "action": "block"}),
        ("dlp_findings_total", {"detector": "credit-card", "confidence": "low"}),
        ("dlp_alert_failures_total", {"sink": "webhook"}),
        ("dlp_alerts_dropped_total", {"sink": "syslog"}),
        ("dlp_smtp_replies_total", {"class": "4xx"}),
        ("dlp_policy_reloads_total", {"result": "failure"}),
    ]:
        assert REGISTRY.get_sample_value(name, labels) is not None, name
    assert REGISTRY.get_sample_value("dlp_build_info", {"version": metrics.__version__}) == 1.0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool comes from scripts/test-deps")
def test_exposition_passes_promtool() -> None:
    metrics.initialise(detector_ids=("credit-card",))
    before = REGISTRY.get_sample_value("dlp_items_scanned_total", {"channel": "http", "action": "block"})
    metrics.record_scan("http", result(Action.BLOCK, ("encrypted",)))
    metrics.record_scan("smtp", result(Action.ALLOW))
    after = REGISTRY.get_sample_value("dlp_items_scanned_total", {"channel": "http", "action": "block"})
    assert after == (before or 0.0) + 1
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=generate_latest(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr.decode()
    assert checked.stdout.decode() + checked.stderr.decode() == ""
