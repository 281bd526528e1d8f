"""Precision and recall of the real engine on a small labeled corpus (issue 2's accuracy targets).

The corpus is bench/corpus.py with a fixed seed (600 KB realistic, 200 KB dense); scoring is
bench/detect.py's `score()`: a medium- or high-confidence finding of the same detector
overlapping a planted value is a hit, anything else of medium or high confidence is a
false positive, and no planted hard negative may carry a medium or high finding.
"""

from __future__ import annotations

import pytest

from bench.corpus import Density, generate
from bench.detect import Scores, build_ours, score

F1_TARGETS = {
    "credit-card": 0.99,
    "us-ssn": 0.99,
    "iban": 0.99,
    "email-address": 0.99,
    "phone-number": 0.95,
}
DENSITIES: tuple[Density, ...] = ("realistic", "dense")
# Enough text for at least 30 true values of each scored detector at either density.
SIZES = {"realistic": 600_000, "dense": 200_000}


@pytest.fixture(scope="module")
def scores() -> dict[str, Scores]:
    engine = build_ours()
    out: dict[str, Scores] = {}
    for density in DENSITIES:
        docs = generate(20_261_128, SIZES[density], density)
        out[density] = score(docs, [engine.scan(doc) for doc in docs], examples=5)
    return out


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize(("detector", "target"), sorted(F1_TARGETS.items()))
def test_f1_meets_target(scores: dict[str, Scores], density: Density, detector: str, target: float) -> None:
    result = scores[density].detectors[detector]
    assert result.truth >= 30
    assert result.f1 >= target, (
        f"{detector} on {density}: P={result.precision:.3f} R={result.recall:.3f} F1={result.f1:.3f}; "
        f"misses {result.misses}; false positives {result.false}"
    )


@pytest.mark.parametrize("density", DENSITIES)
def test_no_medium_or_high_finding_on_hard_negatives(scores: dict[str, Scores], density: str) -> None:
    result = scores[density]
    assert result.negatives >= 100
    assert dict(result.negative_hits) == {}, result.negative_examples
