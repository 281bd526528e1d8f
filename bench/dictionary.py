"""Custom dictionary benchmark: engine build time and scan speed with 0 and N dictionary terms.

    python bench/dictionary.py [--terms N] [--size-mb S] [--seed K] [--runs R]

Writes a dictionary of N generated code names (default 100,000; deterministic for the seed)
and a definition naming it into a temporary folder, then builds two engines in the same run:
the built-in detectors alone (the baseline) and the built-in detectors plus that dictionary.
For each it prints the build CPU seconds and the MB/s on one core (median of R runs) over the
realistic corpus of bench/corpus.py joined into one part, with one planted dictionary term per
2 KB. Both engines scan the same text; the dictionary's terms share the one Aho-Corasick pass
with every keyword, so the scan speeds should stay close.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import generate  # noqa: E402
from dlp.detect import Engine  # noqa: E402
from dlp.model import Part  # noqa: E402

__all__ = ["code_names", "main"]

_SYLLABLES = ("ka", "ro", "mi", "zen", "tor", "vel", "qua", "dri", "lux", "nor", "pha", "sti", "ob", "ur")
_DEFINITION = """\
id: project-codename
description: Internal project code names (benchmark dictionary).
category: crm
anchor: dictionary
dictionary:
  file: codenames.txt
  confidence: medium
keywords: [confidential, internal]
normalise: lower
"""


def code_names(count: int, seed: int) -> list[str]:
    """`count` distinct made-up code names such as `Project Kavelnor-417`, deterministic for `seed`."""
    rng = random.Random(seed)
    names: dict[str, None] = {}
    while len(names) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        names[
            f"Project {word}-{rng.randint(1, 999)}" if rng.random() < 0.5 else f"{word}{rng.randint(1, 99)}"
        ] = None
    return list(names)


def _text(size: int, seed: int, terms: Sequence[str]) -> str:
    """The realistic corpus joined into one text, with a dictionary term after every 2 KB."""
    docs = generate(seed, size, "realistic")
    rng = random.Random(seed)
    out: list[str] = []
    since = 0
    for doc in docs:
        out.append(doc.text)
        since += len(doc.text)
        if since >= 2048 and terms:
            out.append(f" Update on {rng.choice(terms)} (internal).")
            since = 0
    return "\n\n".join(out)


def _timed_build(folders: Sequence[Path]) -> tuple[Engine, float]:
    start = time.process_time()
    engine = Engine.from_folders(folders, hash_key=b"k" * 32)
    return engine, time.process_time() - start


def _scan_mbps(engine: Engine, text: str, runs: int) -> tuple[float, int]:
    part = Part(location="bench", type="text/plain", size=len(text), text=text)
    times: list[float] = []
    found = 0
    for _ in range(runs):
        start = time.process_time()
        findings = engine.detect(part)
        times.append(time.process_time() - start)
        found = sum(1 for f in findings if f.detector == "project-codename")
    return len(text.encode("utf-8")) / 1e6 / statistics.median(times), found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--terms", type=int, default=100_000, help="dictionary size (default 100,000)")
    parser.add_argument("--size-mb", type=float, default=2.0, help="size of the scanned text (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="timed scans per engine; the median counts")
    args = parser.parse_args(argv)
    print("command: python bench/dictionary.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; one process, one core")  # fmt: skip

    terms = code_names(args.terms, args.seed)
    text = _text(int(args.size_mb * 1_000_000), args.seed, terms)
    builtin = ROOT / "detectors"
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "codenames.txt").write_text("# generated code names\n" + "\n".join(terms) + "\n", "utf-8")
        (folder / "project-codename.yaml").write_text(_DEFINITION, "utf-8")
        for label, folders in (
            ("built-in only (baseline)", [builtin]),
            (f"+ {len(terms):,} terms", [builtin, folder]),
        ):
            engine, build = _timed_build(folders)
            mbps, found = _scan_mbps(engine, text, args.runs)
            rows.append(f"| {label} | {build:.3f} | {mbps:.2f} | {found} |")
    print(f"\ntext: {len(text.encode('utf-8')) / 1e6:.2f} MB (realistic corpus, one part)")
    print("| engine | build CPU s | scan MB/s | dictionary findings |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
