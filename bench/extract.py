"""Extraction benchmark: MB/s per format, messages/s for typical emails, and peak RSS
while extracting a 1 GiB text file, on one core, each against a baseline in the same run.

Baselines: for text formats, decoding the bytes (the floor any extractor pays); for
containers and documents, the usual library doing the same job without our limits
(zipfile, tarfile, python-docx, openpyxl read-only, python-pptx, pypdf, py7zr); for
email, parsing with `email.policy.default` and reading every part with `get_content()`.

    .venv/bin/python bench/extract.py [--size-mb 4] [--runs 3] [--big-gib 1 | --big-gib 0]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlp.extract import extract  # noqa: E402
from dlp.model import Item, Limits  # noqa: E402
from tests.extract import samples  # noqa: E402
from tests.extract.samples import CARD  # noqa: E402

LINE = f"Customer note: called about invoice 20240117, card {CARD} on file, ship to 221B Baker St.\n"


def _text(size: int) -> bytes:
    return (LINE * (size // len(LINE) + 1)).encode()[:size]


def _csv(size: int) -> bytes:
    row = f"Jane Doe,jane@example.com,{CARD},+1 202 555 0143,Springfield\n"
    return ("name,email,card,phone,city\n" + row * (size // len(row))).encode()


def _html(size: int) -> bytes:
    block = (
        f'<tr><td class="n">Jane Doe</td><td>{CARD}</td><td><a href="mailto:j@example.com">j</a></td></tr>\n'
    )
    return ("<html><body><table>" + block * (size // len(block)) + "</table></body></html>").encode()


def _json(size: int) -> bytes:
    record = {"name": "Jane Doe", "card": CARD, "tags": ["vip", "eu"], "address": {"city": "Springfield"}}
    count = size // len(json.dumps(record))
    return json.dumps({"customers": [record] * count}).encode()


def _xml(size: int) -> bytes:
    record = f'<customer id="7"><name>Jane Doe</name><card>{CARD}</card></customer>\n'
    return ("<?xml version='1.0'?><customers>" + record * (size // len(record)) + "</customers>").encode()


def _docx(size: int) -> bytes:
    import docx

    document = docx.Document()
    for _ in range(size // len(LINE)):
        document.add_paragraph(LINE.strip())
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xlsx(size: int) -> bytes:
    return samples.xlsx_bytes(rows=size // 40)


def _pptx(size: int) -> bytes:
    import pptx

    deck = pptx.Presentation()
    for _ in range(max(1, size // 2000)):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = "Numbers"
        slide.placeholders[1].text = LINE * 20
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def _pdf(size: int) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    pdf = canvas.Canvas(out)
    for _ in range(max(1, size // 4000)):
        for row in range(50):
            pdf.drawString(40, 800 - row * 15, LINE.strip()[:90])
        pdf.showPage()
    pdf.save()
    return out.getvalue()


def _rtf(size: int) -> bytes:
    body = "\\par ".join([LINE.strip()] * (size // len(LINE)))
    return ("{\\rtf1\\ansi{\\fonttbl\\f0\\fswiss Helvetica;}\\f0\\pard " + body + "\\par}").encode()


def _zip(size: int) -> bytes:
    return samples.zip_bytes({f"export/{i}.csv": _csv(size // 8) for i in range(8)})


def _targz(size: int) -> bytes:
    return samples.tar_bytes({f"dump/{i}.txt": _text(size // 8) for i in range(8)}, "w:gz")


def _7z(size: int) -> bytes:
    return samples.sevenzip_bytes({f"dump/{i}.txt": _text(size // 8) for i in range(8)})


def _eml(size: int) -> bytes:
    return samples.email_bytes({"export.csv": _csv(size // 2), "notes.txt": _text(size // 4)}, body=LINE * 20)


def _decode(data: bytes) -> int:
    return len(data.decode("utf-8", "replace"))


def _zipfile(data: bytes) -> int:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(len(archive.read(name).decode("utf-8", "replace")) for name in archive.namelist())


def _tarfile(data: bytes) -> int:
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            reader = archive.extractfile(member)
            if reader is not None:
                total += len(reader.read().decode("utf-8", "replace"))
    return total


def _python_docx(data: bytes) -> int:
    import docx

    return sum(len(p.text) for p in docx.Document(io.BytesIO(data)).paragraphs)


def _openpyxl(data: bytes) -> int:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    total = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            total += sum(len(str(v)) for v in row if v is not None)
    book.close()
    return total


def _python_pptx(data: bytes) -> int:
    import pptx

    total = 0
    for slide in pptx.Presentation(io.BytesIO(data)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                total += len(shape.text_frame.text)
    return total


def _pypdf(data: bytes) -> int:
    from pypdf import PdfReader

    return sum(len(page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages)


def _py7zr(data: bytes) -> int:
    import py7zr
    from py7zr.io import BytesIOFactory

    factory = BytesIOFactory(limit=1 << 30)
    with py7zr.SevenZipFile(io.BytesIO(data)) as archive:
        archive.extract(factory=factory)
    return sum(len(b.read()) for b in factory.products.values())


def _email_default(data: bytes) -> int:
    message = email.message_from_bytes(data, policy=email.policy.default)
    total = len(str(message["subject"]))
    for part in message.walk():
        if not part.is_multipart():
            content = part.get_content()  # type: ignore[attr-defined]
            total += len(content)
    return total


FORMATS: list[tuple[str, Callable[[int], bytes], float, str, Callable[[bytes], int]]] = [
    ("text (UTF-8)", _text, 1, "decode", _decode),
    ("CSV", _csv, 1, "decode", _decode),
    ("HTML", _html, 1, "decode", _decode),
    ("JSON", _json, 1, "decode", _decode),
    ("XML", _xml, 1, "decode", _decode),
    ("RTF", _rtf, 0.25, "decode", _decode),
    ("ZIP of CSV", _zip, 1, "zipfile", _zipfile),
    ("TAR.GZ of text", _targz, 1, "tarfile", _tarfile),
    ("7z of text", _7z, 1, "py7zr", _py7zr),
    ("DOCX", _docx, 0.5, "python-docx", _python_docx),
    ("XLSX", _xlsx, 0.5, "openpyxl r/o", _openpyxl),
    ("PPTX", _pptx, 0.5, "python-pptx", _python_pptx),
    ("PDF", _pdf, 0.05, "pypdf", _pypdf),
    ("EML with attachments", _eml, 1, "policy.default", _email_default),
]


def ours(data: bytes, name: str) -> int:
    return sum(len(part.text) for part in extract(Item(data=data, name=name), Limits()))


def timed(func: Callable[[], int], runs: int) -> tuple[float, int]:
    times = []
    out = 0
    for _ in range(runs):
        started = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def formats_table(size: int, runs: int) -> None:
    print(
        f"\n## MB/s per format (median of {runs} runs; about {size / 1e6:g} MB of text, less for slow ones)\n"
    )
    print(
        "| format | in MB | text MB | ours in MB/s | ours text MB/s | baseline | base in MB/s | ours/base |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for label, build, scale, base_name, base in FORMATS:
        data = build(int(size * scale))
        ours_s, chars = timed(lambda d=data, n=label: ours(d, n), runs)  # type: ignore[misc]
        base_s, _ = timed(lambda d=data, f=base: f(d), runs)  # type: ignore[misc]
        mb = len(data) / 1e6
        print(
            f"| {label} | {mb:.2f} | {chars / 1e6:.2f} | {mb / ours_s:.2f} | {chars / 1e6 / ours_s:.2f} "
            f"| {base_name} | {mb / base_s:.2f} | {base_s / ours_s:.2f}x |"
        )


def emails_table(runs: int) -> None:
    small = samples.email_bytes({"export.csv": _csv(4_000)}, body=LINE * 30)
    large = samples.email_bytes(
        {
            "export.xlsx": _xlsx(150_000),
            "contract.docx": _docx(100_000),
            "exports.zip": _zip(2_000_000),
            "summary.pdf": _pdf(12_000),
            "notes.csv": _csv(200_000),
        },
        body=LINE * 30,
    )
    print("\n## Messages/s (one core)\n")
    print(
        "| message | size KB | ours msg/s | compat32 parse only msg/s | policy.default + get_content msg/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    typical = ("typical: text + HTML body, CSV attachment", small, 400)
    big = ("large: XLSX, DOCX, ZIP of CSV, PDF, CSV attachments", large, 5)
    for label, data, count in (typical, big):

        def run_ours(d: bytes = data, n: int = count) -> int:
            return sum(ours(d, "m.eml") for _ in range(n))

        def run_compat(d: bytes = data, n: int = count) -> int:
            return sum(len(email.message_from_bytes(d).get_payload()) for _ in range(n))

        def run_default(d: bytes = data, n: int = count) -> int:
            return sum(_email_default(d) for _ in range(n))

        ours_s, _ = timed(run_ours, runs)
        compat_s, _ = timed(run_compat, runs)
        default_s, _ = timed(run_default, runs)
        print(
            f"| {label} | {len(data) / 1e3:.0f} | {count / ours_s:.1f} | {count / compat_s:.1f} "
            f"| {count / default_s:.1f} |"
        )


CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from dlp.extract import extract
from dlp.model import Item, Limits
path = Path(sys.argv[1])
started = time.perf_counter()
chars = parts = 0
for part in extract(Item(path=path, name=path.name), Limits(max_seconds=3600)):
    chars += len(part.text)
    parts += 1
elapsed = time.perf_counter() - started
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(chars, parts, elapsed, hwm)
"""

BASELINE_CHILD = """
import sys, time
started = time.perf_counter()
chars = 0
with open(sys.argv[1], "rb") as f:
    while block := f.read(4 << 20):
        chars += len(block.decode("utf-8", "replace"))
elapsed = time.perf_counter() - started
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(chars, 0, elapsed, hwm)
"""


def big_file_table(gib: float) -> None:
    size = int(gib * (1 << 30))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.txt"
        block = _text(4 << 20)
        with path.open("wb") as out:
            written = 0
            while written < size:
                chunk = block[: size - written]
                out.write(chunk)
                written += len(chunk)
        print(f"\n## Peak RSS extracting a {gib:g} GiB text file (separate processes)\n")
        print("| run | MB/s | parts | peak RSS MB (VmHWM) |")
        print("| --- | ---: | ---: | ---: |")
        for label, code in (
            ("ours: extract(Item(path=...))", CHILD),
            ("baseline: read + decode 4 MiB blocks", BASELINE_CHILD),
        ):
            result = subprocess.run(
                [sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True, check=True
            )
            _, parts, elapsed, rss_kb = result.stdout.split()
            print(f"| {label} | {size / 1e6 / float(elapsed):.0f} | {parts} | {int(rss_kb) / 1024:.0f} |")


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "?"
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "?")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=4.0, help="input size per format (default 4)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per measurement; the median counts")
    parser.add_argument("--big-gib", type=float, default=1.0, help="size of the big text file; 0 skips it")
    args = parser.parse_args(argv)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores ({_cpu()}), "
        f"Python {platform.python_version()}; one process, one core"
    )
    if args.big_gib > 0:
        big_file_table(args.big_gib)
    formats_table(int(args.size_mb * 1e6), args.runs)
    emails_table(args.runs)
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
