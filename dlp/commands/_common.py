"""What several commands share: reading the settings named by `--config`."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlp.config import Settings, load_settings

__all__ = ["settings_from"]


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings for this invocation: `--config FILE` (if given) plus `DLP_*`."""
    path = getattr(args, "config", None)
    return load_settings(Path(path) if path else None)
