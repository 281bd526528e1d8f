"""Secret keys kept under the state folder: created once, mode 0600, never logged.

One key per purpose (finding hashes, quarantine encryption, EDM index hashing) so that
rotating one does not touch the others.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dlp.errors import ConfigError

__all__ = ["load_or_create_key"]


def load_or_create_key(path: Path, size: int = 32) -> bytes:
    """Read the key at `path`, creating it (random, 0600, parent 0700) on first use.

    Creation is atomic (O_EXCL), so two processes starting at once agree on one key.
    """
    try:
        return _read(path, size)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(size)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path, size)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.hex().encode("ascii"))
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _read(path: Path, size: int) -> bytes:
    try:
        key = bytes.fromhex(path.read_text("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"key file {path} does not hold {size} bytes in hex") from exc
    if len(key) != size:
        raise ConfigError(f"key file {path} holds {len(key)} bytes, expected {size} (in hex)")
    return key
