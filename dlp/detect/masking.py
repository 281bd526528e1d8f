"""Masked previews and keyed hashes: the only forms in which a matched value leaves the engine.

A preview keeps just enough to recognise the value (a card's first and last four digits, the
last four of an SSN, an e-mail's domain, a secret's public prefix) and replaces the rest with
`*`, keeping separators so the shape stays readable. A hash is HMAC-SHA256 under the
installation's key over the normalised value, so the same value found twice gives the same
hash without the hash revealing the value to anyone without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Callable

__all__ = [
    "MASKS",
    "NORMALISERS",
    "KeyedHasher",
    "keyed_hash",
    "mask_card",
    "mask_email",
    "mask_last4",
    "mask_prefix",
]

_STAR = "*"
_ALNUM_DEL = {ord(c): None for c in " -./()\t\n\r_:+"}
_DROP_ALNUM = str.maketrans("", "", string.ascii_letters + string.digits)
_HEAD4 = re.compile(r"(?:[^0-9A-Za-z]*[0-9A-Za-z]){4}")


_STAR_TABLE = str.maketrans({c: "*" for c in string.ascii_letters + string.digits})


def _mask_between(value: str, keep_head: bool) -> str:
    """Mask every ASCII letter or digit except the last four (and the first four when
    `keep_head`); everything when too few would stay hidden."""
    if value.isascii() and value.isalnum():
        size = len(value)
        if size <= (10 if keep_head else 6):
            return _STAR * size
        if keep_head:
            return value[:4] + _STAR * (size - 8) + value[-4:]
        return _STAR * (size - 4) + value[-4:]
    total = len(value) - len(value.translate(_DROP_ALNUM))
    if total <= (10 if keep_head else 6):
        return value.translate(_STAR_TABLE)
    head = _HEAD4.match(value) if keep_head else None
    tail = _HEAD4.match(value[::-1])
    start = head.end() if head else 0
    end = len(value) - tail.end() if tail else len(value)
    return value[:start] + value[start:end].translate(_STAR_TABLE) + value[end:]


def mask_card(value: str) -> str:
    """Keep the first four and last four digits (PCI DSS allows first six, last four)."""
    return _mask_between(value, keep_head=True)


def mask_last4(value: str) -> str:
    """Keep the last four letters or digits when the value has more than six of them."""
    return _mask_between(value, keep_head=False)


def mask_email(value: str) -> str:
    """Keep the first character of the local part and the whole domain: `j***@example.com`."""
    local, _, domain = value.rpartition("@")
    if not local:
        return _STAR * 3
    return f"{local[0]}***@{domain}"


def mask_prefix(value: str) -> str:
    """Keep a secret's public prefix (up to the first `_` or `-`, at most eight characters)."""
    line = value.split("\n", 1)[0].strip()
    if line.startswith("-----BEGIN"):
        return line[:64] + " ****"
    separator = min((i for i in (line.find("_"), line.find("-")) if i > 0), default=-1)
    cut = min(separator + 1 if separator > 0 else 4, 8, max(len(line) // 3, 1))
    return line[:cut] + _STAR * 8


MASKS: dict[str, Callable[[str], str]] = {
    "card": mask_card,
    "last4": mask_last4,
    "email": mask_email,
    "prefix": mask_prefix,
}


def _digits_only(value: str) -> str:
    compact = value.translate(_ALNUM_DEL)
    return compact if compact.isdigit() else "".join(filter(str.isdigit, value))


NORMALISERS: dict[str, Callable[[str], str]] = {
    "digits": _digits_only,
    "alnum-upper": lambda value: value.translate(_ALNUM_DEL).upper(),
    "lower": lambda value: value.strip().lower(),
    "exact": lambda value: value,
}


def keyed_hash(key: bytes, normalised: str) -> str:
    """`hmac-sha256:` + hex HMAC-SHA256 of the normalised value under the installation key."""
    return "hmac-sha256:" + hmac.digest(key, normalised.encode("utf-8", "surrogatepass"), "sha256").hex()


_BLOCK = 64


class KeyedHasher:
    """`keyed_hash` under one key, with HMAC's inner and outer SHA-256 states keyed once:
    each value then costs two state copies and two short updates, less than half of a
    one-shot `hmac.digest` (which keys both states again for every value)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, normalised: str) -> str:
        """The same string as `keyed_hash(key, normalised)`."""
        inner = self._inner.copy()
        inner.update(normalised.encode("utf-8", "surrogatepass"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return "hmac-sha256:" + outer.hexdigest()
