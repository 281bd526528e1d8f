"""What several commands share: reading the settings named by `--config`, checking a
input path."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlp.config import Settings, load_settings

__all__ = ["settings_from", "unreadable_reason"]


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings for this invocation: `--config FILE` (if given) plus `DLP_*`."""
    path = getattr(args, "config", None)
    return load_settings(Path(path) if path else None)


def unreadable_reason(path: Path) -> str | None:
    """Why `path` cannot be scanned as one file (None when it can), in words for stderr."""
    if path.is_dir():
        return "is a directory (scan one file at a time)"
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a regular file"
    try:
        with path.open("rb"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__
