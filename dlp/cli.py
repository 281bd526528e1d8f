"""The `dlp` command: one sub-command per module in `dlp.commands`.

Each module there defines `register(subparsers)`, which adds its parser and sets `func`
to a callable taking the parsed arguments and returning the exit status. Adding a
command means adding a module; this file does not change.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import dlp.commands
from dlp.errors import DlpError

__all__ = ["USAGE_ERROR", "main"]

USAGE_ERROR = 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"dlp: {message}", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command module registered."""
    parser = _Parser(prog="dlp", description="Data-loss-prevention scanner: SMTP relay, HTTP API, CLI.")
    parser.add_argument("--config", type=str, default=None, help="YAML configuration file")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(dlp.commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"dlp.commands.{info.name}")
        module.register(sub)
    _accept_config_after_commands(parser)
    return parser


def _accept_config_after_commands(parser: argparse.ArgumentParser) -> None:
    """Let `--config FILE` stand after any command too (`dlp token create --config
    dlp.yaml ...`), as administrators type it; the value given before the command stays
    the default (SUPPRESS: a command-level option only sets it when present)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in {id(p): p for p in action.choices.values()}.values():
            if not any("--config" in known.option_strings for known in child._actions):
                child.add_argument("--config", default=argparse.SUPPRESS, help="YAML configuration file")
            _accept_config_after_commands(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors become a one-line message and exit status 64 or above."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except DlpError as exc:
        print(f"dlp: {exc}", file=sys.stderr)
        return USAGE_ERROR + 1
    except BrokenPipeError:
        return 0
    return status


if __name__ == "__main__":
    raise SystemExit(main())
