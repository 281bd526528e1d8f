"""`dlp token create --role ROLE [--name NAME]`: make an API token, shown once.

The token is printed as the last line of stdout and never again: the store keeps only
its hash. Honours `--config` and `DLP_STATE_DIR` like every command that touches state.
"""

from __future__ import annotations

import argparse

from dlp.commands._common import settings_from
from dlp.store import Role, open_store

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `dlp token create` to the command line."""
    parser = sub.add_parser("token", help="manage API tokens")
    actions = parser.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="create a token and print it once")
    create.add_argument("--role", required=True, choices=[r.label for r in Role])
    create.add_argument("--name", help="a name for the token (shown in the audit log)")
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    """Create the token, audit it, print what it is and, last, the token itself."""
    settings = settings_from(args)
    store = open_store(settings)
    try:
        secret, info = store.create_token(Role.parse(args.role), args.name)
        store.append_audit("cli", "token.create", info.id, {"name": info.name, "role": info.role.label})
    finally:
        store.close()
    print(f"created {info.role.label} token '{info.name}' (id {info.id}); it is shown only once:")
    print(secret)
    return 0
