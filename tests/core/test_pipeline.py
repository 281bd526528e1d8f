"""The pipeline end to end on real text: bounded results, flags and verdict together."""

from __future__ import annotations

from pathlib import Path

from dlp.config import load_settings
from dlp.model import Item, ScanContext
from dlp.pipeline import MAX_FINDINGS_PER_DETECTOR, Scanner


def test_findings_are_bounded_per_detector_and_later_detectors_still_count(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"DLP_STATE_DIR": str(tmp_path)})
    scanner = Scanner.from_settings(settings)
    lines = [f"Contact: person{i}@customers-example.org" for i in range(MAX_FINDINGS_PER_DETECTOR + 500)]
    lines.append("Card for the refund: 4532 0151 1283 0366")
    result = scanner.scan(Item.from_text("\n".join(lines), name="export.txt"), ScanContext(channel="http"))
    detectors = [f.detector for f in result.findings]
    assert detectors.count("email-address") == MAX_FINDINGS_PER_DETECTOR
    assert detectors.count("credit-card") == 1
    assert result.flags == ()
