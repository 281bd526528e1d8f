"""`dlp edm index CSV --name NAME --columns COL[,COL...]`: index CRM records as hashes.

A column may name its kind (`Mobile:phone`); otherwise the header decides (email, phone,
number, name, text). Refreshing an index with the same name replaces it atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlp.cli import USAGE_ERROR
from dlp.commands._common import settings_from

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp edm index` to the command line."""
    parser = sub.add_parser("edm", help="exact data match of CRM records")
    edm_sub = parser.add_subparsers(dest="edm_command", required=True)
    index = edm_sub.add_parser("index", help="build (or refresh) an index from a CSV/TSV export")
    index.add_argument("csv", help="CRM export with a header row")
    index.add_argument("--name", required=True, help="index name (letters, digits, - and _)")
    index.add_argument("--columns", required=True, help="columns to index: COL[:kind][,COL...]")
    index.add_argument("--region", default="US", help="default phone region for national numbers")
    index.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    """Build the index and print a one-line summary (counts only)."""
    from dlp.edm import build_index, edm_folder, edm_key_path, parse_columns
    from dlp.keys import load_or_create_key

    settings = settings_from(args)
    source = Path(args.csv)
    if not source.is_file():
        print(f"dlp: {source}: no such file", file=sys.stderr)
        return USAGE_ERROR + 2
    secret = load_or_create_key(edm_key_path(settings.state_dir))
    stats = build_index(
        source, args.name, parse_columns(args.columns), secret, edm_folder(settings.state_dir), args.region
    )
    print(
        f"indexed {stats.records} records ({stats.values} values) as '{args.name}' "
        f"in {stats.seconds:.1f} s: {stats.path}"
    )
    return 0
