"""`dlp detectors [--format json|table]`: list the loaded detectors.

Shows what an installation runs: the built-in definitions plus every configured folder
(a later folder's definition replaces a built-in one with the same id), with category,
regulations and the rules that map evidence to low / medium / high.
"""

from __future__ import annotations

import argparse
import json

from dlp.commands._common import settings_from
from dlp.detect import DetectorInfo, Engine

__all__ = ["register", "render"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp detectors` to the command line."""
    parser = sub.add_parser("detectors", help="list the loaded detectors")
    parser.add_argument("--format", choices=("json", "table"), default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the detectors as the service would and print them."""
    from dlp.pipeline import builtin_folder

    settings = settings_from(args)
    builtin = builtin_folder("detectors").resolve()
    folders = [builtin, *(f for f in settings.detectors if f.is_dir() and f.resolve() != builtin)]
    engine = Engine.from_folders(folders, hash_key=b"listing only: nothing is hashed")
    print(render(engine.detectors, args.format))
    return 0


def render(detectors: tuple[DetectorInfo, ...], fmt: str) -> str:
    """The detectors as JSON (a list of objects) or as an aligned table for people."""
    if fmt == "json":
        return json.dumps([d.to_dict() for d in detectors], indent=2, ensure_ascii=False)
    width = max((len(d.id) for d in detectors), default=2)
    lines = [f"{'id':<{width}}  {'category':<9} {'regulations':<24} confidence rules"]
    for d in detectors:
        regulations = ",".join(d.regulations) or "-"
        lines.append(f"{d.id:<{width}}  {d.category:<9} {regulations:<24} {d.confidence_rules}")
    return "\n".join(lines)
