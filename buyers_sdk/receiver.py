"""Answering the exchange: verify its signature, read its ping or post, answer with a bid.

When a campaign's endpoint has no field ``mapping``, the exchange posts its own JSON body (the
``exchange.v1`` protocol)::

    {"protocol": "exchange.v1", "kind": "ping", "ping_id": "...", "delivery_id": "...",
     "vertical": "solar", "source": "google", "test": false,
     "fields": {"zip": "94103", "state": "CA", ...}}

A ping carries the lead's non-PII fields only; a post (the sale) carries every field, PII
included, its ``lead_id`` and the supplier's ``consent`` record. Keys whose value is unknown
are left out. Each request is signed::

    X-Exchange-Timestamp:   <unix seconds>
    X-Exchange-Signature:   v1=<hex HMAC-SHA256(secret, b"<timestamp>." + raw body)>
    X-Exchange-Delivery-Id: <the same on every retry of one delivery: de-duplicate on it>

Answer a ping with ``bid(...)`` or ``no_bid(...)`` and a post with ``accept(...)`` or
``reject(...)``; ``endpoints(...)`` builds the campaign ``endpoints`` whose response rules read
exactly those answers:

=========  ============================================  ====================================
request    answer body                                    rule in the campaign's endpoint
=========  ============================================  ====================================
ping       ``{"status": "bid", "bid": "12.50"}``          ``success_path: status``,
                                                           ``success_values: ["bid"]``,
                                                           ``price_path: bid`` (major units)
ping       ``{"status": "no_bid", "reason": "..."}``      not a success: no bid
post       ``{"status": "accepted", "id": "<your id>"}``  ``success_values: ["accepted"]``,
                                                           ``reference_path: id``
post       ``{"status": "rejected", "reason": "..."}``    a final rejection, never retried
=========  ============================================  ====================================

Answer 2xx with these bodies. A 5xx, 408 or 429 on a post is a transport error the exchange
retries; on a ping it is never a bid.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

PROTOCOL = "exchange.v1"
TIMESTAMP_HEADER = "X-Exchange-Timestamp"
SIGNATURE_HEADER = "X-Exchange-Signature"
DELIVERY_ID_HEADER = "X-Exchange-Delivery-Id"
SIGNATURE_VERSION = "v1"
TOLERANCE_S = 300
TIMESTAMP_MAX_DIGITS = 12
CENTS = Decimal("0.01")

# The response rules matching the builders below (see the table above).
PING_RESPONSE_RULES: dict[str, Any] = {
    "success_path": "status",
    "success_values": ["bid"],
    "price_path": "bid",
    "reason_path": "reason",
}
POST_RESPONSE_RULES: dict[str, Any] = {
    "success_path": "status",
    "success_values": ["accepted"],
    "reference_path": "id",
    "reason_path": "reason",
}


class InvalidBody(ValueError):
    """The body is not the exchange's native JSON for this kind of request."""


# --- what the exchange sends ---------------------------------------------------------------------


class Consent(msgspec.Struct, kw_only=True):
    """The consent and provenance the supplier recorded, handed to you with the sale."""

    tcpa_text: str | None = None
    trustedform_cert_url: str | None = None
    jornaya_leadid: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    landing_page_url: str | None = None
    consented_at: str | None = None


class Ping(msgspec.Struct, kw_only=True):
    """A ping: what would you pay for this lead? Non-PII ``fields`` only."""

    protocol: str
    kind: str
    vertical: str
    fields: dict[str, Any]
    delivery_id: str | None = None
    ping_id: str | None = None
    lead_id: str | None = None
    source: str | None = None
    test: bool = False
    consent: Consent | None = None


class Post(msgspec.Struct, kw_only=True):
    """A post: the lead is yours if you accept it. ``fields`` include its PII."""

    protocol: str
    kind: str
    vertical: str
    fields: dict[str, Any]
    delivery_id: str | None = None
    lead_id: str | None = None
    ping_id: str | None = None
    source: str | None = None
    test: bool = False
    consent: Consent | None = None


# Money in fields ("185.40") decodes as Decimal, never as a float.
_decoder_ping = msgspec.json.Decoder(Ping, float_hook=Decimal)
_decoder_post = msgspec.json.Decoder(Post, float_hook=Decimal)


def _decode(decoder: msgspec.json.Decoder, body: bytes | str, kind: str) -> Any:
    try:
        message = decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidBody(f"not an {PROTOCOL} {kind}: {exc}") from exc
    if message.protocol != PROTOCOL or message.kind != kind:
        raise InvalidBody(
            f"expected protocol {PROTOCOL!r} kind {kind!r}, got {message.protocol!r} {message.kind!r}"
        )
    return message


def decode_ping(body: bytes | str) -> Ping:
    """The exchange's ping body as a ``Ping``; ``InvalidBody`` when it is not one."""
    return _decode(_decoder_ping, body, "ping")


def decode_post(body: bytes | str) -> Post:
    """The exchange's post body as a ``Post``; ``InvalidBody`` when it is not one."""
    return _decode(_decoder_post, body, "post")


# --- signatures ----------------------------------------------------------------------------------


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for key, value in items:
        if key.lower() == wanted:
            return value
    return None


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` (for your own tests): ``v1=<hex>``."""
    if not secret:
        raise ValueError("a signing secret must not be empty")
    return f"{SIGNATURE_VERSION}={_mac(secret, timestamp, body)}"


def verify(
    secret: str | Iterable[str],
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    now_s: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True when the request is signed by the exchange with ``secret`` and is fresh.

    ``headers`` are the request's headers (any mapping or (name, value) pairs; names are matched
    case-insensitively), ``body`` the raw bytes as received (for a GET endpoint: the raw query
    string). ``secret`` may be several secrets while one rotates. A timestamp more than
    ``tolerance_s`` from ``now_s`` (default: the clock) is refused, so a captured request cannot
    be replayed. Comparisons are constant-time.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    stamp = (_header(headers, TIMESTAMP_HEADER) or "").strip()
    signature = _header(headers, SIGNATURE_HEADER) or ""
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= TIMESTAMP_MAX_DIGITS):
        return False
    ts = int(stamp)
    now = time.time() if now_s is None else now_s
    if abs(now - ts) > tolerance_s:
        return False
    digests = []
    for entry in signature.split(","):
        version, _, digest = entry.strip().partition("=")
        if version == SIGNATURE_VERSION and digest.isascii():
            digests.append(digest)
    matched = False
    for key in secrets:
        if not key:
            continue
        expected = _mac(key, ts, body)
        for digest in digests:  # no early exit: timing does not tell which one matched
            matched |= hmac.compare_digest(digest, expected)
    return matched


def delivery_id(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    """The ``X-Exchange-Delivery-Id``: the same on every retry of one delivery."""
    return _header(headers, DELIVERY_ID_HEADER)


# --- answers -------------------------------------------------------------------------------------

_encode = msgspec.json.Encoder().encode


def price_text(price: Decimal | str | int) -> str:
    """A price as the exchange reads it: major units with two decimals (``"12.50"``).

    An ``int`` is minor units (cents): ``1250`` is ``"12.50"``. A ``Decimal`` or ``str`` is major
    units: ``Decimal("12.5")`` and ``"12.50"`` are ``"12.50"``. Floats are refused (a price must
    never pass through binary floating point), as are negative amounts and fractions of a cent.
    """
    if isinstance(price, (bool, float)):
        raise TypeError("a price is Decimal, str (major units) or int (minor units), never float")
    if isinstance(price, int):
        amount = Decimal(price) / 100
    else:
        try:
            amount = Decimal(price.strip() if isinstance(price, str) else price)
        except InvalidOperation:
            raise ValueError(f"not a price: {price!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a price is a finite amount >= 0: {price!r}")
    cents = amount.quantize(CENTS)
    if cents != amount:
        raise ValueError(f"a price is whole cents: {price!r}")
    return f"{cents:.2f}"


def bid(price: Decimal | str | int) -> bytes:
    """A ping answer bidding ``price`` (int: cents; Decimal or str: major units)."""
    return _encode({"status": "bid", "bid": price_text(price)})


def no_bid(reason: str | None = None) -> bytes:
    """A ping answer passing on the lead; ``reason`` shows in the exchange's traces."""
    body: dict[str, Any] = {"status": "no_bid"}
    if reason:
        body["reason"] = reason
    return _encode(body)


def accept(reference: str | None = None) -> bytes:
    """A post answer taking the lead (you are charged); ``reference`` is your id for it."""
    body: dict[str, Any] = {"status": "accepted"}
    if reference is not None:
        body["id"] = reference
    return _encode(body)


def reject(reason: str) -> bytes:
    """A post answer refusing the lead: final, never retried, not charged."""
    return _encode({"status": "rejected", "reason": reason})


def endpoints(
    post_url: str,
    ping_url: str | None = None,
    *,
    auth: Mapping[str, Any] | None = None,
    ping_timeout_ms: int | None = None,
    post_timeout_ms: int | None = None,
) -> dict[str, Any]:
    """A campaign's ``endpoints`` whose response rules read this module's answers.

    ``ping_url`` is for ``live`` campaigns; ``auth`` (e.g. ``{"kind": "bearer", "token": ...}``)
    is sent on both. No ``mapping``: the exchange sends its native body, for ``decode_*``.
    """

    def config(url: str, rules: dict[str, Any], timeout_ms: int | None) -> dict[str, Any]:
        result: dict[str, Any] = {"url": url, "response": dict(rules)}
        if auth is not None:
            result["auth"] = dict(auth)
        if timeout_ms is not None:
            result["timeout_ms"] = timeout_ms
        return result

    result = {"post": config(post_url, POST_RESPONSE_RULES, post_timeout_ms)}
    if ping_url is not None:
        result["ping"] = config(ping_url, PING_RESPONSE_RULES, ping_timeout_ms)
    return result
