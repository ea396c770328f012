"""Signatures on requests to buyers: HMAC-SHA256 over the timestamp and the body.

Every ping and post carries three headers:

    X-Exchange-Timestamp:   <unix seconds>
    X-Exchange-Signature:   v1=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>
    X-Exchange-Delivery-Id: <id, the same on every retry of one delivery, for de-duplication>

The timestamp is inside the signed bytes, so a captured request cannot be replayed later with a
fresh timestamp; the buyer refuses timestamps outside a freshness window (`verify`). For a GET,
whose payload travels in the URL, "body" is the URL's raw (still percent-encoded) query string.

A signature header may list several comma-separated entries (``v1=aa..,v1=bb..``) so a buyer
can accept the old and the new secret while one rotates; one matching entry is enough.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Exchange-Timestamp"
SIGNATURE_HEADER = "X-Exchange-Signature"
DELIVERY_ID_HEADER = "X-Exchange-Delivery-Id"
SIGNATURE_VERSION = "v1"
SIGNATURE_TOLERANCE_S = 300  # clock skew + transit a buyer accepts, either direction
TIMESTAMP_MAX_DIGITS = 12  # unix seconds for the next 30,000 years; caps the parse work


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header: ``v1=<hex>``."""
    if not secret:
        raise ValueError("a signing secret must not be empty")
    if timestamp < 0:
        raise ValueError("timestamp must be unix seconds >= 0")
    return f"{SIGNATURE_VERSION}={_mac(secret, timestamp, body)}"


def parse_timestamp(value: int | str) -> int | None:
    """The header's unix seconds, or None when it is not a plain non-negative integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= TIMESTAMP_MAX_DIGITS:
            return int(text)
    return None


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    now_s: int,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
) -> bool:
    """True when `signature` is ours for this timestamp and body, and the timestamp is fresh.

    `timestamp` and `signature` may be the raw header values. The comparison is constant-time.
    """
    ts = parse_timestamp(timestamp)
    if not secret or ts is None or abs(now_s - ts) > tolerance_s:
        return False
    expected = _mac(secret, ts, body)
    matched = False
    for entry in signature.split(","):
        version, _, digest = entry.strip().partition("=")
        # No early exit: every entry is compared, so timing does not tell which one matched.
        # compare_digest refuses non-ASCII text, so a garbage header is a mismatch, not a crash.
        if version == SIGNATURE_VERSION and digest.isascii():
            matched |= hmac.compare_digest(digest, expected)
    return matched
