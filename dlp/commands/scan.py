"""`dlp scan [PATH|-]`: extract, detect and decide one file; print the result.

Exit status: 0 allow, 1 alert, 2 quarantine, 3 block, 64 and above usage or input errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dlp.cli import USAGE_ERROR
from dlp.commands._common import settings_from, unreadable_reason
from dlp.model import Item, ScanContext, ScanResult

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp scan` to the command line."""
    parser = sub.add_parser("scan", help="scan one file (or stdin) and print the verdict")
    parser.add_argument("path", nargs="?", default="-", help="file to scan, or - for stdin")
    parser.add_argument("--name", help="file name to report (default: the path's name)")
    parser.add_argument("--policy", action="append", help="policy folder (repeatable)")
    parser.add_argument("--format", choices=("json", "table"), default="json")
    parser.add_argument("--channel", default="cli", help="channel the policies see")
    parser.add_argument("--sender", help="sender address the policies see")
    parser.add_argument("--recipient", action="append", default=[], help="recipient (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Scan the file and print the result; the exit status is the action."""
    from dlp.pipeline import Scanner
    from dlp.policy import PolicySet

    settings = settings_from(args)
    if args.path == "-":
        item = Item(data=sys.stdin.buffer.read(), name=args.name)
    else:
        path = Path(args.path)
        problem = unreadable_reason(path)
        if problem is not None:
            print(f"dlp: {path}: {problem}", file=sys.stderr)
            return USAGE_ERROR + 2
        item = Item(path=path, name=args.name or path.name)
    policies = None
    if args.policy:
        policies = PolicySet.load([Path(p) for p in args.policy], internal_domains=settings.internal_domains)
    scanner = Scanner.from_settings(settings, policies=policies)
    context = ScanContext(
        channel=args.channel,
        sender=args.sender,
        recipients=tuple(args.recipient),
        internal_domains=settings.internal_domains,
    )
    result = scanner.scan(item, context)
    print(render(result, args.format))
    return result.action.exit_code


def render(result: ScanResult, fmt: str) -> str:
    """The result as JSON (the public shape) or as a table for people."""
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    lines = [f"action: {result.action.label}    id: {result.id}"]
    for rule in result.verdict.rules:
        lines.append(f"rule   {rule.rule_id:<28} {rule.action.label:<10} {rule.explanation}")
    for finding in result.findings:
        lines.append(
            f"found  {finding.detector:<20} {finding.confidence.label:<6} "
            f"{finding.preview:<24} {finding.location}:{finding.start}-{finding.end}"
        )
    if result.flags:
        lines.append("flags  " + ", ".join(result.flags))
    return "\n".join(lines)
