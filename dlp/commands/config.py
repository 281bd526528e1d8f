"""`dlp config check [FILE]`: validate a configuration and print it, secrets masked.

Checks what `dlp serve` would refuse at start: the file and `DLP_*` overrides, listen
addresses, the next hop, the alert sinks and the policy folders. Prints the effective
configuration (file plus environment plus defaults) as YAML on stdout, with every secret
replaced by `********`; problems go to stderr, one per line, with exit status 65.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from dlp.cli import USAGE_ERROR
from dlp.config import Settings, load_settings, masked_settings, parse_listen
from dlp.errors import ConfigError, DlpError

__all__ = ["check_settings", "config_warnings", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp config check` to the command line."""
    parser = sub.add_parser("config", help="configuration tools")
    actions = parser.add_subparsers(dest="config_command", required=True)
    check = actions.add_parser("check", help="validate a configuration and print it with secrets masked")
    check.add_argument("file", nargs="?", help="YAML configuration file (default: --config, or none)")
    check.set_defaults(func=run)


def check_settings(settings: Settings) -> list[str]:
    """Every problem `dlp serve` would stop on, beyond what the settings model validates."""
    from dlp.alerts import sinks_from_settings
    from dlp.pipeline import policy_folders
    from dlp.policy import PolicySet
    from dlp.smtp.nexthop import parse_next_hop

    checks: list[tuple[str, Callable[[], object]]] = [
        ("smtp.listen", lambda: parse_listen(settings.smtp.listen)),
        ("http.listen", lambda: parse_listen(settings.http.listen)),
        ("smtp.next_hop", lambda: parse_next_hop(settings.smtp.next_hop, settings.smtp.next_hop_tls)),
        ("smtp.client_networks", lambda: _client_networks(settings)),
        ("alerts", lambda: sinks_from_settings(settings)),
        (
            "policies",
            lambda: PolicySet.load(policy_folders(settings), internal_domains=settings.internal_domains),
        ),
    ]
    if settings.smtp.tls_cert or settings.smtp.tls_key:
        checks.append(("smtp.tls_cert", lambda: _tls_files(settings)))
    problems = []
    for name, check in checks:
        try:
            check()
        except DlpError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def config_warnings(settings: Settings) -> list[str]:
    """Valid settings an operator should think twice about: a client network that is the
    whole address space makes the relay an open relay unless the network in front of it
    keeps everyone but the MTAs away; a release lease no longer than the next-hop timeout
    (which bounds a release's delivery) lets another replica take over a release still in
    flight and deliver the message twice."""
    whole = [n for n in _client_networks(settings) if n.prefixlen == 0]
    warnings = [
        f"smtp.client_networks: {network} lets any host send mail through the relay (an open relay "
        "unless a firewall or network policy lets only your MTAs reach it)"
        for network in whole
    ]
    lease, send = settings.retention.release_lease_seconds, settings.smtp.next_hop_timeout_seconds
    if lease <= send:
        warnings.append(
            f"retention.release_lease_seconds: {lease:g} s is not longer than "
            f"smtp.next_hop_timeout_seconds ({send:g} s): another replica may take over a release "
            "still being sent and deliver the message twice"
        )
    return warnings


def _client_networks(settings: Settings) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(n, strict=False) for n in settings.smtp.client_networks]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _tls_files(settings: Settings) -> None:
    for path in (settings.smtp.tls_cert, settings.smtp.tls_key):
        if path is None or not path.is_file():
            raise ConfigError("smtp.tls_cert and smtp.tls_key must both name readable files")


def run(args: argparse.Namespace) -> int:
    """Validate; print the masked effective configuration; 0 when valid, 65 otherwise."""
    path = args.file or getattr(args, "config", None)
    try:
        settings = load_settings(Path(path) if path else None)
    except DlpError as exc:
        print(f"dlp: {exc}", file=sys.stderr)
        return USAGE_ERROR + 1
    problems = check_settings(settings)
    print(yaml.safe_dump(masked_settings(settings), sort_keys=False, default_flow_style=False), end="")
    for problem in problems:
        print(f"dlp: {problem}", file=sys.stderr)
    if problems:
        return USAGE_ERROR + 1
    for warning in config_warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print("dlp: configuration OK", file=sys.stderr)
    return 0
