"""Signed postback URLs: a buyer's CRM (or an agent's dialer) reports an outcome by calling a
URL, with no API key, that the party signed with its postback secret.

    GET or POST /v1/postbacks/outcome?kind=won&lead_id=..&party_id=..&ts=1767225600
                                     &value_minor=125000&sig=v1=<hex>

- The secret: ``HMAC-SHA256(secret_key, "postback:" + party_id)`` as hex
  (``GET /v1/outcomes/postback`` shows it to the party itself).
- The signed bytes: ``canonical(params)``, the query's parameters except ``sig``, sorted by
  name, each ``name=value`` percent-encoded (RFC 3986, nothing left unescaped) and joined by
  ``&``; then ``exchange.delivery.signing.sign(secret, ts, canonical)``, the same scheme as the
  exchange's requests to buyers, so the timestamp is inside the signature.
- Fresh: ``ts`` within ``signing.SIGNATURE_TOLERANCE_S`` of the exchange's clock. A replay
  inside that window is harmless: a report is idempotent per (lead, party, kind).

``buyers_sdk.postback_url`` builds the same URL without importing the exchange; a test checks
that the two agree.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote

from exchange.delivery import signing

POSTBACK_PATH = "/v1/postbacks/outcome"
SIG_PARAM = "sig"
TS_PARAM = "ts"
# What a postback may carry; anything else is refused (a typo would otherwise be signed and lost).
PARAMS = frozenset(
    {"lead_id", "party_id", "kind", "value_minor", "currency", "reason", "occurred_at",
     TS_PARAM, SIG_PARAM}
)  # fmt: skip
QUERY_MAX_CHARS = 4096  # far above any real postback; bounds the parse


def secret_for(secret_key: str, party_id: str) -> str:
    """A party's postback secret, derived from the exchange's secret (nothing stored)."""
    message = f"postback:{party_id}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def _enc(text: str) -> str:
    return quote(text, safe="")


def canonical(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    """The signed form of a postback's parameters: every one but ``sig``, sorted, encoded."""
    items = params.items() if isinstance(params, Mapping) else params
    pairs = sorted((k, v) for k, v in items if k != SIG_PARAM)
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in pairs).encode()


def sign(secret: str, params: Mapping[str, str], ts: int) -> str:
    """The ``sig`` of ``params`` (``ts`` among them, or added here)."""
    return signing.sign(secret, ts, canonical({**params, TS_PARAM: str(ts)}))


class BadQuery(ValueError):
    """The query string is not a postback's: ``path`` and ``reason`` say what."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def parse_query(raw: str) -> dict[str, str]:
    """The query's parameters, each once and each known (``BadQuery`` otherwise)."""
    if len(raw) > QUERY_MAX_CHARS:
        raise BadQuery("query", f"longer than {QUERY_MAX_CHARS} characters")
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadQuery("query", f"not a query string: {exc}") from exc
    for key, value in pairs:
        if key not in PARAMS:
            raise BadQuery(f"query.{key}", "unknown parameter")
        if key in params:
            raise BadQuery(f"query.{key}", "given more than once")
        params[key] = value
    return params


# Why a signature is refused (the 401's error code).
SIGNATURE_MISSING = "signature_missing"
SIGNATURE_STALE = "signature_stale"
SIGNATURE_INVALID = "signature_invalid"


def check(secret: str, params: Mapping[str, str], now_s: int) -> str | None:
    """None when ``params`` carry a fresh signature by ``secret``; else why not."""
    ts, sig = params.get(TS_PARAM), params.get(SIG_PARAM)
    if not ts or not sig:
        return SIGNATURE_MISSING
    stamp = signing.parse_timestamp(ts)
    if stamp is None or abs(now_s - stamp) > signing.SIGNATURE_TOLERANCE_S:
        return SIGNATURE_STALE
    if not signing.verify(secret, stamp, canonical(params), sig, now_s):
        return SIGNATURE_INVALID
    return None
