"""Scan cost per stage for typical small mail: extract, detect, decide, total, on one core.

    .venv/bin/python bench/scan.py [--messages 300] [--rounds 5]

What one `Scanner.scan` of a clean mail costs in the worker process, split into its
stages, for the ~10 KB message of `bench/smtp.py` (prose body + small CSV attachment)
and a ~100 KB one (ten times the body and the attachment). The baseline, in the same
run, is the floor any scan pays: the stdlib parse alone (`email.message_from_bytes`
with `policy.compat32`, what extraction uses). Each stage is timed over the same
messages, several rounds, best round kept (the machine is shared: the best round is the
least disturbed one). The detectors and policy packs are the shipped ones; the state
folder (finding-hash key) is a temporary one. `msg/s` is 1 / total: one core, one worker.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smtp import make_message  # noqa: E402

from dlp.config import load_settings  # noqa: E402
from dlp.extract import extract  # noqa: E402
from dlp.model import Evidence, Finding, Item, Part, ScanContext  # noqa: E402
from dlp.pipeline import Scanner  # noqa: E402

CONTEXT = ScanContext(
    channel="smtp",
    sender="alice@corp.example",
    recipients=("bob@partner.example",),
    client="127.0.0.1",
    internal_domains=("corp.example",),
)


def big_message(n: int) -> bytes:
    """A ~100 KB message: the small one's body and attachment ten times over."""
    from email import message_from_bytes
    from email.message import EmailMessage
    from email.policy import SMTP as SMTP_POLICY

    small = message_from_bytes(make_message(n), policy=email.policy.default)
    assert isinstance(small, EmailMessage)
    body = small.get_body(("plain",))
    attachment = next(small.iter_attachments())
    assert body is not None
    msg = EmailMessage()
    for key in ("From", "To", "Subject", "Message-ID"):
        msg[key] = small[key]
    msg.set_content("\n\n".join([body.get_content()] * 10))
    msg.add_attachment(
        attachment.get_payload(decode=True) * 10,
        maintype="text",
        subtype="csv",
        filename=attachment.get_filename(),
    )
    return msg.as_bytes(policy=SMTP_POLICY)


def best_ms(run: Callable[[], None], count: int, rounds: int) -> float:
    """Milliseconds per message of the fastest round."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return 1000 * best / count


def measure(scanner: Scanner, messages: list[bytes], rounds: int) -> dict[str, float]:
    """Per-message milliseconds of each stage over `messages`."""
    items = [Item(data=m, declared_type="message/rfc822") for m in messages]
    parts: list[list[Part]] = [list(extract(item, scanner.limits)) for item in items]
    findings: list[list[Finding]] = [[f for p in ps for f in scanner.engine.detect(p)] for ps in parts]
    evidence = [
        Evidence(
            item_name=None,
            item_size=item.size,
            parts=tuple(p.info() for p in ps),
            findings=tuple(fs),
            flags=(),
        )
        for item, ps, fs in zip(items, parts, findings, strict=True)
    ]
    count = len(items)

    def parse() -> None:
        for m in messages:
            email.message_from_bytes(m, policy=email.policy.compat32)

    def extract_all() -> None:
        for item in items:
            for _ in extract(item, scanner.limits):
                pass

    def detect_all() -> None:
        for ps in parts:
            for p in ps:
                scanner.engine.detect(p)

    def decide_all() -> None:
        for e in evidence:
            scanner.policies.decide(e, CONTEXT)

    def scan_all() -> None:
        for item in items:
            scanner.scan(item, CONTEXT)

    return {
        "parse": best_ms(parse, count, rounds),
        "extract": best_ms(extract_all, count, rounds),
        "detect": best_ms(detect_all, count, rounds),
        "decide": best_ms(decide_all, count, rounds),
        "total": best_ms(scan_all, count, rounds),
        "parts": sum(len(ps) for ps in parts) / count,
    }


def main() -> None:
    """Measure both sizes and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=300, help="messages per size (100 KB: a tenth)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per stage; the best is kept")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dlp-bench-scan-") as state:
        settings = load_settings(None, environ={"DLP_STATE_DIR": state})
        os.chdir(ROOT)
        scanner = Scanner.from_settings(settings)
        sizes = [
            ("10 KB", [make_message(n) for n in range(args.messages)]),
            ("100 KB", [big_message(n) for n in range(max(1, args.messages // 10))]),
        ]
        results = [(name, len(msgs[0]), measure(scanner, msgs, args.rounds)) for name, msgs in sizes]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"rounds: {args.rounds} per stage, best kept; shipped detectors and policy packs")
    print("baseline: parse = email.message_from_bytes(policy=compat32) alone (the floor of extract)")
    print()
    columns = ("bytes", "parts", "parse ms", "extract ms", "detect ms", "decide ms", "total ms", "msg/s")
    print(f"{'mail':<8}" + "".join(f"{c:>11}" for c in columns))
    print("-" * (8 + 11 * len(columns)))
    for name, size, r in results:
        cells = (
            f"{size}",
            f"{r['parts']:.0f}",
            *(f"{r[k]:.2f}" for k in ("parse", "extract", "detect", "decide", "total")),
            f"{1000 / r['total']:.0f}",
        )
        print(f"{name:<8}" + "".join(f"{c:>11}" for c in cells))
    print()
    for name, _, r in results:
        print(
            f"{name}: extract is {r['extract'] / r['parse']:.1f}x the bare parse; "
            f"stages sum to {r['extract'] + r['detect'] + r['decide']:.2f} of {r['total']:.2f} ms"
        )


if __name__ == "__main__":
    main()
