"""EDM benchmark: index build time and memory for N records, lookup cost per scanned MB.

    python bench/edm.py [--records 1000000 10000000] [--text-mb 20]

For each size: writes a synthetic 3-column CRM export (name, email, phone), builds the
index in a fresh process (so peak RSS is the build's own), loads it in another and
reports its RSS growth, then times the matcher over realistic text with 50 planted
records. The baseline in the same run is the same text through the matcher with no
index loaded (the engine's cost is measured by bench/detect.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elena"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Novak", "Kim"]


def write_export(path: Path, records: int, seed: int = 1) -> None:
    """A CRM export with unique emails and phones, names from small lists (realistic repeats)."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        handle.write("Full Name,Email,Phone\n")
        for i in range(records):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            phone = f"+1 {200 + i % 800:03d} {i // 800 % 1000:03d} {i // 800_000:04d}"
            handle.write(f"{first} {last},{first.lower()}.{last.lower()}.{i}@example.com,{phone}\n")


def _child(code: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


BUILD = """
import json, resource, sys, time
from pathlib import Path
from dlp.edm import build_index, parse_columns
t = time.perf_counter()
stats = build_index(Path({src!r}), "crm", parse_columns("Full Name,Email,Phone"), b"k" * 32, Path({out!r}))
print(json.dumps({{"seconds": time.perf_counter() - t,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "bytes": stats.path.stat().st_size}}))
"""

LOAD = """
import json, resource, time
from pathlib import Path
from dlp.edm import EdmMatcher
from dlp.model import Part
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
matcher = EdmMatcher.load(Path({out!r}), b"k" * 32, b"h" * 32)
text = Path({text!r}).read_text()
empty = EdmMatcher([], b"k" * 32, b"h" * 32)
part = Part("bench", "text/plain", len(text), text)
t = time.perf_counter(); found = matcher.detect(part); seconds = time.perf_counter() - t
records = found[0].count if found else 0
print(json.dumps({{"load_rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
    "scan_seconds": seconds, "records": records}}))
"""


def _text(path: Path, size_mb: int, records: int) -> None:
    rng = random.Random(2)
    filler = (
        "Quarterly review: pipeline grew 12% and churn fell; order 88412 shipped on 2024-03-02. "
        "Please see the attached deck before Thursday's call with the regional leads.\n"
    )
    chunks = [filler] * (size_mb * 1024 * 1024 // len(filler))
    for slot in rng.sample(range(len(chunks)), 50):
        i = rng.randrange(records)
        first, last = FIRST[0], LAST[0]
        email = f"{first.lower()}.{last.lower()}.{i}@example.com"
        chunks[slot] = (
            f"Contact {email} or +1 {200 + i % 800:03d} {i // 800 % 1000:03d} {i // 800_000:04d}.\n"
        )
    path.write_text("".join(chunks))


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--text-mb", type=int, default=20)
    args = parser.parse_args()
    print(
        f"# bench/edm.py on {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    )
    print(
        f"# command: python bench/edm.py --records {' '.join(map(str, args.records))}"
        f" --text-mb {args.text_mb}"
    )
    print("| records | build s | build peak MB | index MB | loaded RSS MB | matcher MB/s | planted found |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for records in args.records:
            src, out, text = folder / "crm.csv", folder / f"idx{records}", folder / "text.txt"
            write_export(src, records)
            _text(text, args.text_mb, records)
            built = _child(BUILD.format(src=str(src), out=str(out)))
            loaded = _child(LOAD.format(out=str(out), text=str(text)))
            print(
                f"| {records:,} | {built['seconds']:.1f} | {built['peak_mb']:.0f} "
                f"| {built['bytes'] / 2**20:.0f} "
                f"| {loaded['load_rss_mb']:.0f} | {args.text_mb / loaded['scan_seconds']:.0f} "
                f"| {loaded['records']:.0f}/50 |"
            )
            src.unlink()
    print(f"# peak RSS of this driver: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"# elapsed at {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
