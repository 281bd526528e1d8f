"""`dlp serve [--config FILE]`: run the SMTP relay, the HTTP API and `/metrics` (see `dlp.serve`).

Logs are JSON lines on stderr. Exit status 0 after a graceful shutdown (SIGTERM or
SIGINT); 65 when the configuration, a policy or a detector is invalid or a listener
cannot be opened; 70 after an unexpected error (logged with its traceback, scrubbed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from dlp.cli import USAGE_ERROR
from dlp.commands._common import settings_from
from dlp.errors import DlpError
from dlp.logging import configure_logging

__all__ = ["register"]

log = logging.getLogger("dlp.serve")

SOFTWARE_ERROR = 70
"""Exit status for an unexpected error (sysexits EX_SOFTWARE); the traceback is logged as JSON."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp serve` to the command line."""
    parser = sub.add_parser("serve", help="run the SMTP relay, the HTTP API and /metrics")
    parser.add_argument("--config", default=argparse.SUPPRESS, help="YAML configuration file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT; 0 after a graceful stop."""
    from dlp.serve import serve

    settings = settings_from(args)
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except (DlpError, OSError) as exc:
        log.error("cannot start", extra={"error": f"{type(exc).__name__}: {exc}"})
        return USAGE_ERROR + 1
    except Exception:
        log.exception("stopped on an unexpected error")
        return SOFTWARE_ERROR
    return 0
