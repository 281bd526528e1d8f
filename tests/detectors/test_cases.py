"""Every built-in detector against its cases file: positives found, hard negatives not.

`tests/detectors/cases/<id>.yaml` holds at least three positives (text, the exact value
matched, the lowest confidence accepted; aggregates give `count` or `attributes`) and at
least three hard negatives (no finding of that detector at medium or high confidence).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dlp.detect import Engine
from dlp.model import Confidence, Finding, Part, Table

ROOT = Path(__file__).resolve().parents[2]
DETECTORS = ROOT / "detectors"
CASES = Path(__file__).parent / "cases"
DETECTOR_IDS = sorted(p.stem for p in DETECTORS.glob("*.yaml"))


def _load(detector: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CASES / f"{detector}.yaml").read_text(encoding="utf-8"))
    return data


def _cases(kind: str) -> list[Any]:
    out = []
    for detector in DETECTOR_IDS:
        for index, case in enumerate(_load(detector)[kind]):
            out.append(pytest.param(detector, case, id=f"{detector}-{index}"))
    return out


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_folders([DETECTORS], hash_key=b"k" * 32)


def _scan(engine: Engine, case: str | dict[str, Any]) -> tuple[str, list[Finding]]:
    if isinstance(case, str):
        case = {"text": case}
    text = case["text"]
    table = Table(case.get("delimiter", ","), tuple(case["header"])) if "header" in case else None
    part = Part(location="case", type="text/plain", size=len(text), text=text, table=table)
    return text, engine.detect(part)


@pytest.mark.parametrize("detector", DETECTOR_IDS)
def test_every_detector_has_enough_cases(detector: str) -> None:
    cases = _load(detector)
    assert len(cases["positives"]) >= 3
    assert len(cases["negatives"]) >= 3


@pytest.mark.parametrize(("detector", "case"), _cases("positives"))
def test_positive(engine: Engine, detector: str, case: dict[str, Any]) -> None:
    text, findings = _scan(engine, case)
    lowest = Confidence.parse(case.get("confidence", "medium"))
    mine = [f for f in findings if f.detector == detector]
    if "value" in case:
        spans = [(text[f.start : f.end], f.confidence) for f in mine]
        assert any(value == case["value"] and conf >= lowest for value, conf in spans), spans
        return
    assert len(mine) == 1, mine
    finding = mine[0]
    assert finding.confidence >= lowest
    if "count" in case:
        assert finding.count == case["count"]
        assert dict(finding.attributes) == {"rows": case["count"]}
    if "attributes" in case:
        assert dict(finding.attributes) == case["attributes"]


@pytest.mark.parametrize(("detector", "case"), _cases("negatives"))
def test_hard_negative(engine: Engine, detector: str, case: str | dict[str, Any]) -> None:
    text, findings = _scan(engine, case)
    strong = [
        (text[f.start : f.end], f.confidence.label)
        for f in findings
        if f.detector == detector and f.confidence >= Confidence.MEDIUM
    ]
    assert strong == []
