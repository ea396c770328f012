"""API keys: generated here, shown once, stored as a SHA-256 of the secret.

A key reads ``lx_<prefix>_<secret>``. The prefix is public (it appears in listings and logs and
finds the row with one index probe); the secret is 256 random bits, so a plain SHA-256 is the
right hash: there is no password to stretch, only a token to compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_SCHEME = "lx"
PREFIX_BYTES = 6  # 12 hex chars
SECRET_BYTES = 32
KEY_MAX_CHARS = 128


class ParsedKey:
    __slots__ = ("prefix", "secret")

    def __init__(self, prefix: str, secret: str) -> None:
        self.prefix = prefix
        self.secret = secret


def generate() -> tuple[str, str, str]:
    """A new key: (the full key to show once, its prefix, the hash to store)."""
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return f"{KEY_SCHEME}_{prefix}_{secret}", prefix, hash_secret(secret)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(key: str) -> ParsedKey | None:
    if len(key) > KEY_MAX_CHARS:
        return None
    scheme, sep, rest = key.partition("_")
    prefix, sep2, secret = rest.partition("_")
    if scheme != KEY_SCHEME or not sep or not sep2 or len(prefix) != PREFIX_BYTES * 2 or not secret:
        return None
    return ParsedKey(prefix, secret)


def matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
