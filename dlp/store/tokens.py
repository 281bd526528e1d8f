"""API tokens: roles, generation and hashing. Only the hash of a token is ever stored.

A token is `dlp_` + 32 random bytes (URL-safe base64). The store keeps its SHA-256
hash; verification hashes the presented token and compares in constant time.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["TOKEN_PREFIX", "Role", "TokenInfo", "hash_token", "hashes_equal", "new_token"]

TOKEN_PREFIX = "dlp_"


class Role(enum.IntEnum):
    """What a token may do; each role includes the ones below it."""

    SCANNER = 1
    REVIEWER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The lower-case name used on the command line, in JSON and the store."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """Read `scanner`, `reviewer` or `admin` (any case); `ValueError` otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role '{text}' (scanner, reviewer or admin)") from None


@dataclass(frozen=True)
class TokenInfo:
    """A stored token without its secret: who it is and what it may do."""

    id: str
    name: str
    role: Role
    created_at: float
    revoked: bool = False


def new_token() -> str:
    """A fresh random token (shown once to whoever created it)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what the store keeps and looks up."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    """Constant-time comparison of two token hashes."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))
