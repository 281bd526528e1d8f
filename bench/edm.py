"""EDM benchmark: index build time and memory for N records, lookup overhead on the detector corpus.

    python bench/edm.py [--records 1000000 10000000] [--corpus-mb 2] [--runs 9] [--cache DIR]

For each size:
1. a synthetic 3-column CRM export (name, email, phone) is written once and cached in
   `--cache` (its generation is not build time);
2. the index is built in a fresh process: CPU seconds, peak RSS of that process, file size;
3. another process loads it, checks that a document carrying 50 indexed records yields
   them, and scans the detector benchmark's realistic corpus (bench/corpus.py,
   `--corpus-mb`; no indexed record in it, like most mail) with
   the engine alone (the baseline: `Engine.detect(part)`) and with exact data match
   (`Engine.detect(part, values, matcher.run_counts)` then `EdmMatcher.detect(part, values)`, what the
   pipeline does), interleaved (alternating which goes first), `--runs` times each; it
   reports the least CPU time of each (the least disturbed by other processes on a
   shared machine), the overhead in percent (also from the medians), the matcher's own
   CPU time (a third interleaved mode: the matcher alone over candidates collected once,
   least of the runs; no clock call per part) against the engine's (less noisy than a
   difference of two totals), the RSS the loaded index added after matching, and the RSS with every page of
   the index touched (the most it can take).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elena"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Novak", "Kim"]


def record(i: int) -> tuple[str, str, str]:
    """Record `i` of the synthetic export: name from small lists (realistic repeats, spread
    by a multiplicative hash of `i`), unique email and phone."""
    mixed = (i * 2654435761) % 2**32
    first, last = FIRST[mixed % len(FIRST)], LAST[mixed // len(FIRST) % len(LAST)]
    phone = f"+1 {200 + i % 800:03d} {i // 800 % 1000:03d} {i // 800_000:04d}"
    return f"{first} {last}", f"{first.lower()}.{last.lower()}.{i}@example.com", phone


def write_export(path: Path, records: int) -> float:
    """Write the export unless the cache already holds it; the seconds spent writing."""
    if path.is_file():
        return 0.0
    started = time.perf_counter()
    tmp = path.with_suffix(".partial")
    with tmp.open("w") as handle:
        handle.write("Full Name,Email,Phone\n")
        batch = []
        for i in range(records):
            batch.append(",".join(record(i)) + "\n")
            if len(batch) == 100_000:
                handle.write("".join(batch))
                batch.clear()
        handle.write("".join(batch))
    os.replace(tmp, path)
    return time.perf_counter() - started


def _child(code: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


BUILD = """
import json, resource, time
from pathlib import Path
from dlp.edm import build_index, parse_columns
t = time.process_time(); w = time.perf_counter()
stats = build_index(Path({src!r}), "crm", parse_columns("Full Name,Email,Phone"), b"k" * 32, Path({out!r}))
print(json.dumps({{"cpu": time.process_time() - t, "wall": time.perf_counter() - w,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "bytes": stats.path.stat().st_size}}))
"""

LOAD = """
import json, os, statistics, time
from pathlib import Path
from bench.corpus import generate
from bench.edm import record
from dlp.detect import Engine
from dlp.edm import EdmMatcher
from dlp.model import Part, Table

def rss():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

docs = generate(1, int({corpus_mb} * 2**20), "realistic")
size = sum(len(d.text.encode()) for d in docs)
planted = "".join(
    f"- {{n}} can be reached at {{e}} or {{p}}.\\n"
    for n, e, p in (record(i) for i in range(7, {records}, max(1, {records} // 50))[:50]))
parts = [Part("bench", "text/csv" if d.header else "text/plain", len(d.text), d.text,
              table=Table(",", d.header) if d.header else None) for d in docs]
planted_part = Part("planted", "text/plain", len(planted), planted)
engine = Engine.from_folders([Path({detectors!r})], hash_key=b"h" * 32)
before = rss()
matcher = EdmMatcher.load(Path({out!r}), b"k" * 32, b"h" * 32)
loaded = rss() - before

def alone():
    for part in parts:
        engine.detect(part)

def with_edm():
    found = []
    for part in parts:
        values = []
        engine.detect(part, values, matcher.run_counts)
        found.extend(matcher.detect(part, values))
    return found

collected = []
for part in parts:
    collected.append([])
    engine.detect(part, collected[-1], matcher.run_counts)

def matcher_alone():
    for part, values in zip(parts, collected):
        matcher.detect(part, values)

with_edm()
values = []
engine.detect(planted_part, values, matcher.run_counts)
found = matcher.detect(planted_part, values)
base, edm, matching = [], [], []
for run in range({runs}):
    modes = ((alone, base), (with_edm, edm), (matcher_alone, matching))
    for mode, times in modes[:: 1 if run % 2 else -1]:
        t = time.process_time(); mode(); times.append(time.process_time() - t)
matched = rss() - before
index = matcher.indexes[0]
for array in (index._hashes, index._records, index._columns):
    int(array.sum())
print(json.dumps({{"loaded_mb": loaded, "matched_mb": matched, "touched_mb": rss() - before,
    "base": min(base), "edm": min(edm), "base_median": statistics.median(base),
    "edm_median": statistics.median(edm), "matcher": min(matching), "corpus_mb": size / 2**20,
    "records": sum(f.count for f in found), "other": sum(f.count for f in with_edm())}}))
"""


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--corpus-mb", type=float, default=2.0, help="realistic corpus size (default 2)")
    parser.add_argument("--runs", type=int, default=9, help="timed passes of each mode; the median counts")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dlp-edm-bench")
    args = parser.parse_args()
    print(
        f"# bench/edm.py on {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()},"
        f" load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"# command: python bench/edm.py --records {' '.join(map(str, args.records))}"
        f" --corpus-mb {args.corpus_mb:g} --runs {args.runs}"
    )
    print(
        "| records | build CPU s | build wall s | build peak RSS MB | index MiB | RSS after load MB "
        "| RSS after matching MB | RSS all pages MB | corpus MB | engine alone s | engine + EDM s "
        "| overhead (min) | overhead (median) | matcher alone s | matcher / engine | planted found "
        "| other records |"
    )
    print("| " + " | ".join(["---"] * 17) + " |")
    args.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for records in args.records:
            src, out = args.cache / f"crm-{records}.csv", Path(tmp) / f"idx{records}"
            generated = write_export(src, records)
            if generated:
                print(f"# export of {records:,} records written in {generated:.1f} s (cached in {src})")
            built = _child(BUILD.format(src=str(src), out=str(out)))
            loaded = _child(
                LOAD.format(
                    out=str(out),
                    records=records,
                    corpus_mb=args.corpus_mb,
                    runs=args.runs,
                    detectors=str(ROOT / "detectors"),
                )
            )
            overhead = (loaded["edm"] - loaded["base"]) / loaded["base"] * 100
            median = (loaded["edm_median"] - loaded["base_median"]) / loaded["base_median"] * 100
            print(
                f"| {records:,} | {built['cpu']:.1f} | {built['wall']:.1f} | {built['peak_mb']:.0f} "
                f"| {built['bytes'] / 2**20:.0f} | {loaded['loaded_mb']:.1f} | {loaded['matched_mb']:.1f} "
                f"| {loaded['touched_mb']:.0f} | {loaded['corpus_mb']:.1f} | {loaded['base']:.3f} "
                f"| {loaded['edm']:.3f} | {overhead:+.1f}% | {median:+.1f}% | {loaded['matcher']:.3f} "
                f"| {loaded['matcher'] / loaded['base'] * 100:.1f}% | {loaded['records']:.0f}/50 "
                f"| {loaded['other']:.0f} |"
            )
    print(f"# peak RSS of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"# finished at {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
