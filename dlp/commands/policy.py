"""`dlp policy check [DIR]` and `dlp policy test PATH`: validate packs, try a verdict.

`check` prints every error with file, line and field and exits 1 if there is any; it
warns (exit 0) about detector ids or categories that no configured detector has.
`test` scans a file or `.eml` through the whole pipeline and prints the action, each
matching rule with its explanation, the regulations and their notification clocks. For
an `.eml` the sender and recipients default to its From, To and Cc headers. Its exit
status is the action's, as for `dlp scan` (0 allow ... 3 block).
"""

from __future__ import annotations

import argparse
import sys
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from pathlib import Path

from dlp.cli import USAGE_ERROR
from dlp.commands._common import settings_from, unreadable_reason
from dlp.config import Settings
from dlp.errors import ConfigError
from dlp.model import Item, ScanContext, ScanResult
from dlp.policy import PolicySet, check_folders

__all__ = ["register", "render_verdict", "run_check", "run_test"]

HEADER_BYTES = 256 * 1024


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp policy check` and `dlp policy test` to the command line."""
    parser = sub.add_parser("policy", help="validate policy packs or try them on a file")
    policy_sub = parser.add_subparsers(dest="policy_command", required=True)
    check = policy_sub.add_parser("check", help="validate every *.yaml; exit 1 on any error")
    check.add_argument("dir", nargs="*", help="policy folder (default: the configured folders)")
    check.set_defaults(func=run_check)
    test = policy_sub.add_parser("test", help="show the verdict and each rule's explanation for a file")
    test.add_argument("path", help="file or .eml to scan")
    test.add_argument("--policy", action="append", help="policy folder (repeatable)")
    test.add_argument("--sender", help="sender address (default for .eml: From)")
    test.add_argument("--recipient", action="append", default=[], help="recipient (repeatable)")
    test.add_argument("--channel", choices=("smtp", "http", "cli"), help="channel (default: smtp for .eml)")
    test.add_argument("--client", help="HTTP client name the policies see")
    test.set_defaults(func=run_test)


def run_check(args: argparse.Namespace) -> int:
    """Validate the folders as a whole; print every error or a one-line summary."""
    settings = settings_from(args)
    folders = [Path(d) for d in args.dir] if args.dir else _configured_folders(settings)
    policies, errors = check_folders(folders, settings.internal_domains)
    if policies is None:
        for error in errors:
            print(error, file=sys.stderr)
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    for warning in _unknown_names(policies, settings):
        print(f"warning: {warning}", file=sys.stderr)
    enabled = sum(1 for r in policies.rules if r.enabled)
    print(
        f"ok: {len(policies.rules)} rules ({enabled} enabled) in {len(policies.files)} files, "
        f"version {policies.version}"
    )
    return 0


def _configured_folders(settings: Settings) -> list[Path]:
    """The folders `dlp serve` would load: the shipped packs when the default `./policies`
    does not exist; a missing configured folder is left for the check to report."""
    from dlp.pipeline import policy_folders

    try:
        return policy_folders(settings)
    except ConfigError:
        return list(settings.policies)


def _unknown_names(policies: PolicySet, settings: Settings) -> list[str]:
    """Detector ids and categories the rules name but the configured detectors lack.

    The engine is built with a throw-away key: only the detectors' names are needed.
    """
    from dlp.detect import Engine
    from dlp.pipeline import builtin_folder

    builtin = builtin_folder("detectors")
    folders = [builtin, *(f for f in settings.detectors if f.is_dir() and f.resolve() != builtin.resolve())]
    engine = Engine.from_folders(folders, hash_key=bytes(32))
    detectors = engine.detectors
    return policies.unknown_names({d.id for d in detectors}, {d.category for d in detectors})


def run_test(args: argparse.Namespace) -> int:
    """Scan the file with the given context and print the verdict explained."""
    from dlp.pipeline import Scanner

    settings = settings_from(args)
    path = Path(args.path)
    problem = unreadable_reason(path)
    if problem is not None:
        print(f"dlp: {path}: {problem}", file=sys.stderr)
        return USAGE_ERROR + 2
    policies = None
    if args.policy:
        policies = PolicySet.load([Path(p) for p in args.policy], internal_domains=settings.internal_domains)
    scanner = Scanner.from_settings(settings, policies=policies)
    context = _context(args, path, settings.internal_domains)
    result = scanner.scan(Item(path=path, name=path.name), context)
    print(render_verdict(result, context))
    return result.action.exit_code


def _context(args: argparse.Namespace, path: Path, internal: tuple[str, ...]) -> ScanContext:
    sender: str | None = args.sender
    recipients = tuple(args.recipient)
    channel: str = args.channel or "cli"
    if path.suffix.lower() == ".eml":
        channel = args.channel or "smtp"
        with path.open("rb") as stream:
            headers = BytesHeaderParser().parsebytes(stream.read(HEADER_BYTES))
        if sender is None:
            found = [addr for _, addr in getaddresses([str(v) for v in headers.get_all("from", [])]) if addr]
            sender = found[0] if found else None
        if not recipients:
            values = [str(v) for name in ("to", "cc") for v in headers.get_all(name, [])]
            recipients = tuple(addr for _, addr in getaddresses(values) if addr)
    return ScanContext(
        channel=channel, sender=sender, recipients=recipients, client=args.client, internal_domains=internal
    )


def render_verdict(result: ScanResult, context: ScanContext) -> str:
    """The verdict for people: action, context, each rule and why, regulations, flags."""
    verdict = result.verdict
    lines = [f"action:      {verdict.action.label}"]
    lines.append(
        f"context:     channel {context.channel}, sender {context.sender or '-'}, "
        f"recipients {', '.join(context.recipients) or '-'}"
    )
    if verdict.message:
        lines.append(f"message:     {verdict.message}")
    if not verdict.rules:
        lines.append("rules:       none matched")
    for rule in verdict.rules:
        lines.append(f"rule:        {rule.rule_id} [{rule.mode}, {rule.action.label}, {rule.severity}]")
        lines.append(f"             {rule.explanation}")
    for regulation in verdict.regulations:
        hours = verdict.deadlines.get(regulation)
        clock = f"notify within {hours} hours" if hours is not None else "no fixed notification clock"
        lines.append(f"regulation:  {regulation} ({clock})")
    if result.flags:
        lines.append(f"flags:       {', '.join(result.flags)}")
    lines.append(f"findings:    {len(result.findings)}")
    lines.append(f"policy:      version {verdict.policy_version}")
    return "\n".join(lines)
