"""The buyer adapter: a pure translator between the exchange and one buyer endpoint.

`build_request` turns a lead into the bytes a buyer's endpoint expects; `parse_response` turns
what came back into a `BuyerAnswer`. Neither sleeps, retries, logs or touches the network or a
database (the transport and the workers do), so every rule here is tested with plain values.

PII never leaves on a ping: a ping reads only the lead's non-PII `fields` and its envelope, even
when the mapping names a PII field (that key is then left out, or `MappingError` if required).

How an answer is read (`parse_response`), in order:
1. HTTP 5xx, 429, 408, or any status outside 2xx/4xx  -> ERROR (never a bid or a rejection).
2. A path is configured and the body is not JSON     -> ERROR (we cannot tell what it said).
3. 2xx and the success rule holds                      -> ACCEPTED; else -> REJECTED.
   The success rule: the value at `success_path` is one of `success_values`, or
   `success_regex` finds a match, or (neither set) the status is 2xx.
4. An accepted ping with a price rule must carry a price: a missing, malformed, negative or
   sub-cent price is ERROR (the buyer said yes to something we cannot read); a price of exactly
   0 is REJECTED (a zero bid is no bid, as in `auction.ranking.MIN_BID_MINOR`). Without a
   price rule an accepted ping has `price_minor=None`: the campaign's fixed price applies.
"""

from __future__ import annotations

import base64
import decimal
import enum
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import msgspec

from exchange.delivery import signing
from exchange.delivery.config import (
    CONSENT_PREFIX,
    ENVELOPE_SOURCES,
    FIELDS_PREFIX,
    BasicAuth,
    BearerAuth,
    EndpointConfig,
    HeaderAuth,
    Kind,
    ResponseRules,
    redact_url,
)
from exchange.intake.messages import Consent
from exchange.logs import REDACTED

USER_AGENT = "lead-exchange/1"
NATIVE_PROTOCOL = "exchange.v1"  # the body sent when a config has no mapping
REASON_MAX_CHARS = 200  # buyer-written text kept per answer (traces, logs)
REFERENCE_MAX_CHARS = 128
PRICE_MAX_MINOR = 100_000_000  # 1,000,000.00: anything above is a buyer's bug, not a bid
PRICE_MAX_CHARS = 24
CENTS_PER_UNIT = 100
RETRYABLE_4XX = frozenset({408, 429})  # "not now", not "no": errors, never rejections

_encode_json = msgspec.json.Encoder().encode
# Numbers with a fraction or exponent decode as Decimal straight from the JSON text: a price is
# never a float, not even for a moment.
_decode_json = msgspec.json.Decoder(float_hook=Decimal).decode
_PRICE_MAX = Decimal(PRICE_MAX_MINOR) / CENTS_PER_UNIT
_CENT = Decimal("0.01")
_PRICE_TEXT = re.compile(r"^\d+(\.\d+)?$")
_MISSING: Any = object()


class MappingError(ValueError):
    """A required mapping has no value for this lead, or names PII on a ping: nothing is sent."""


class LeadPayload(msgspec.Struct, frozen=True, kw_only=True):
    """What the adapter may send about one lead. `pii` is read by posts only."""

    vertical: str
    fields: dict[str, Any]  # the non-PII fields
    pii: dict[str, Any] = {}  # names, phone, email, address...
    lead_id: str | None = None
    ping_id: str | None = None
    source: str | None = None
    consent: Consent | Mapping[str, Any] | None = None  # a Consent, or its stored dict form
    test: bool = False

    def __post_init__(self) -> None:
        both = sorted(self.fields.keys() & self.pii.keys())
        if both:  # the same key in both would let a ping read what should be PII
            raise ValueError(f"fields and pii share keys: {both}")


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    kind: Kind
    timeout_ms: int  # the endpoint's timeout for this kind (transport.send's default)
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    secret_headers: tuple[str, ...] = ()  # header names to mask in any log

    def redacted_headers(self) -> dict[str, str]:
        hidden = {h.lower() for h in self.secret_headers}
        return {k: REDACTED if k.lower() in hidden else v for k, v in self.headers.items()}

    def __repr__(self) -> str:
        # The body of a post carries PII and the URL may carry a key: neither goes into a repr.
        return (
            f"HttpRequest(kind={self.kind!r}, method={self.method!r}, "
            f"url={redact_url(self.url)!r}, headers={self.redacted_headers()!r}, "
            f"body=<{len(self.body)} bytes>)"
        )


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"  # a ping: a bid; a post: the buyer took the lead
    REJECTED = "rejected"  # the buyer said no: never retried
    ERROR = "error"  # no usable answer: a ping gets no bid, a post may be retried


class BuyerAnswer(msgspec.Struct, frozen=True, kw_only=True):
    outcome: Outcome
    price_minor: int | None = None  # an accepted ping's bid, when the config reads a price
    reference: str | None = None  # the buyer's id for this ping/post
    reason: str | None = None  # the buyer's own words, truncated
    error: str | None = None  # for ERROR: what was wrong, in the exchange's words


# --- building ----------------------------------------------------------------------------------


def _envelope(kind: Kind, lead: LeadPayload, delivery_id: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "lead_id": lead.lead_id,
        "ping_id": lead.ping_id,
        "delivery_id": delivery_id,
        "vertical": lead.vertical,
        "source": lead.source,
        "test": lead.test,
    }


class _PiiOnPing(Exception):
    """A ping's mapping named a PII field: the key is left out (or MappingError if required)."""


def _consent(lead: LeadPayload) -> dict[str, Any]:
    consent = lead.consent
    if consent is None:
        return {}
    return dict(consent) if isinstance(consent, Mapping) else msgspec.structs.asdict(consent)


def _lookup(source: str, kind: Kind, lead: LeadPayload, envelope: dict[str, Any]) -> Any:
    if source in ENVELOPE_SOURCES:
        if source.startswith(CONSENT_PREFIX):
            return _consent(lead).get(source.removeprefix(CONSENT_PREFIX))
        return envelope[source]
    name = source.removeprefix(FIELDS_PREFIX)
    if name in lead.fields:
        return lead.fields[name]
    if name in lead.pii:
        if kind == "post":
            return lead.pii[name]
        raise _PiiOnPing(name)
    return None


def _value_key(value: Any) -> str:
    # value_map keys are JSON object keys, so always text; booleans as JSON spells them.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mapped(
    config: EndpointConfig, kind: Kind, lead: LeadPayload, envelope: dict[str, Any]
) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for m in config.mapping:
        if m.constant is not None:
            pairs.append((m.target, m.constant))
            continue
        assert m.source is not None  # FieldMap guarantees source xor constant
        try:
            value = _lookup(m.source, kind, lead, envelope)
        except _PiiOnPing:
            if m.required:
                raise MappingError(f"{m.source!r} is PII and is never sent on a ping") from None
            continue
        if value is None:
            if m.required:
                raise MappingError(f"required source {m.source!r} (-> {m.target!r}) is missing")
            continue
        if m.value_map is not None:
            value = m.value_map.get(_value_key(value), value)
        pairs.append((m.target, value))
    return pairs


def _native(kind: Kind, lead: LeadPayload, envelope: dict[str, Any]) -> dict[str, Any]:
    fields = {**lead.fields, **lead.pii} if kind == "post" else dict(lead.fields)
    body = {"protocol": NATIVE_PROTOCOL, **envelope, "fields": fields}
    consent = {k: v for k, v in _consent(lead).items() if v is not None}
    if consent:
        body["consent"] = consent
    return {k: v for k, v in body.items() if v is not None}


def _nest(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for target, value in pairs:
        *parents, leaf = target.split(".")
        node = root
        for key in parents:  # EndpointConfig rejects "a" next to "a.b", so these are dicts
            node = node.setdefault(key, {})
        node[leaf] = value
    return root


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return _encode_json(value).decode()  # dates as ISO text, dicts as JSON


def _form(pairs: list[tuple[str, Any]]) -> str:
    flat: list[tuple[str, str]] = []
    for key, value in pairs:
        items = value if isinstance(value, (list, tuple)) else [value]  # lists repeat the key
        flat.extend((key, _form_text(v)) for v in items)
    return urlencode(flat)


def _auth_headers(config: EndpointConfig) -> tuple[dict[str, str], tuple[str, ...]]:
    auth = config.auth
    if isinstance(auth, BearerAuth):
        return {"Authorization": f"Bearer {auth.token}"}, ("Authorization",)
    if isinstance(auth, BasicAuth):
        token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, ("Authorization",)
    if isinstance(auth, HeaderAuth):
        return {auth.name: auth.value}, (auth.name,)
    return {}, ()


def build_request(
    config: EndpointConfig,
    kind: Kind,
    lead: LeadPayload,
    *,
    secret: str,
    now_s: int,
    delivery_id: str,
) -> HttpRequest:
    """The signed request for a ping or post of `lead`. Raises MappingError, never does I/O."""
    if kind not in ("ping", "post"):
        raise ValueError(f"kind must be 'ping' or 'post', not {kind!r}")
    envelope = _envelope(kind, lead, delivery_id)
    url = config.url
    headers: dict[str, str] = {"User-Agent": USER_AGENT}
    if config.mapping:
        pairs = _mapped(config, kind, lead, envelope)
        body = _encode_json(_nest(pairs)) if config.body == "json" else _form(pairs).encode()
    else:
        body = _encode_json(_native(kind, lead, envelope))
    if config.method == "GET":
        query = body.decode()
        url = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
        # See signing: a GET signs its whole query string as sent, the buyer's own part too.
        signed, body = url.partition("?")[2].encode(), b""
    else:
        signed = body
        form = config.body == "form"
        headers["Content-Type"] = (
            "application/x-www-form-urlencoded" if form else "application/json"
        )
    # Static headers first: auth, then the exchange's own headers, which a config cannot name.
    headers.update(config.headers)
    auth_headers, secret_headers = _auth_headers(config)
    headers.update(auth_headers)
    headers[signing.TIMESTAMP_HEADER] = str(now_s)
    headers[signing.SIGNATURE_HEADER] = signing.sign(secret, now_s, signed)
    headers[signing.DELIVERY_ID_HEADER] = delivery_id
    hidden = (*secret_headers, *config.headers)  # static values are often API keys too
    return HttpRequest(
        kind=kind,
        timeout_ms=config.timeout_for(kind),
        method=config.method,
        url=url,
        headers=headers,
        body=body,
        secret_headers=hidden,
    )


# --- parsing -----------------------------------------------------------------------------------


def parse_price_minor(value: Any) -> int | None:
    """A price in decimal major units ("12.50", 12.5 as Decimal, 12) as integer minor units.

    None when it is not a plain non-negative amount with at most two significant decimals
    ("12.500" is fine, "12.505" is not), or is above PRICE_MAX_MINOR. Floats and booleans are
    refused: a price must come from its text, never through binary floating point.
    """
    if isinstance(value, bool) or isinstance(value, float):
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > PRICE_MAX_CHARS or not text.isascii() or not _PRICE_TEXT.match(text):
            return None
        value = Decimal(text)
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        return None
    if value > _PRICE_MAX:
        return None
    # Below the cap the cent value fits the context's precision, so quantize is exact there,
    # and comparing (always exact) tells whether anything finer than a cent was dropped.
    cents = value.quantize(_CENT)
    if cents != value:
        return None
    return int(cents * CENTS_PER_UNIT)


def _at(doc: Any, path: str) -> Any:
    node = doc
    for key in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(key, _MISSING)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def _text_of(value: Any, limit: int) -> str | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, list):  # "Errors": ["a", "b"]
        value = "; ".join(t for v in value if (t := _text_of(v, limit)))
    elif isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, str):
        value = _encode_json(value).decode() if isinstance(value, dict) else str(value)
    value = value.strip()
    return value[:limit] or None


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode_text(body: bytes, content_type: str | None) -> str:
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def _succeeded(rules: ResponseRules, status: int, doc: Any, text: str) -> bool:
    if not 200 <= status < 300:
        return False
    if rules.success_path is not None:
        wanted = {_value_key(v).strip().lower() for v in rules.success_values}
        found = _at(doc, rules.success_path)
        return found is not _MISSING and _value_key(found).strip().lower() in wanted
    if rules.success_regex is not None:
        return re.search(rules.success_regex, text) is not None
    return True


def _price(rules: ResponseRules, doc: Any, text: str) -> Any:
    if rules.price_path is not None:
        return _at(doc, rules.price_path)
    assert rules.price_regex is not None
    match = re.search(rules.price_regex, text)
    return match.group(1) if match else _MISSING


def _error(message: str, reason: str | None = None, reference: str | None = None) -> BuyerAnswer:
    return BuyerAnswer(outcome=Outcome.ERROR, error=message, reason=reason, reference=reference)


def parse_response(
    config: EndpointConfig, kind: Kind, status: int, body: bytes, content_type: str | None
) -> BuyerAnswer:
    """What the buyer said (rules in the module docstring). Pure; never raises on bad input."""
    rules = config.response
    text = _decode_text(body, content_type)
    answered = 200 <= status < 300 or 400 <= status < 500
    if not answered or status in RETRYABLE_4XX:  # 5xx, 429, 408, redirects: not an answer
        return _error(f"http {status}", reason=_text_of(text, REASON_MAX_CHARS))
    doc: Any = None
    if rules.needs_json:
        try:
            doc = _decode_json(body)
        except (msgspec.DecodeError, decimal.InvalidOperation):
            return _error(f"http {status}: unreadable body", _text_of(text, REASON_MAX_CHARS))
    reference = None
    if rules.reference_path is not None:
        reference = _text_of(_at(doc, rules.reference_path), REFERENCE_MAX_CHARS)
    if rules.reason_path is not None:
        reason = _text_of(_at(doc, rules.reason_path), REASON_MAX_CHARS)
    else:
        reason = None if rules.needs_json else _text_of(text, REASON_MAX_CHARS)
    if not _succeeded(rules, status, doc, text):
        reason = reason or f"http {status}"
        return BuyerAnswer(outcome=Outcome.REJECTED, reference=reference, reason=reason)
    if kind == "post" or not rules.has_price:
        return BuyerAnswer(outcome=Outcome.ACCEPTED, reference=reference, reason=reason)
    raw = _price(rules, doc, text)
    if raw is _MISSING or raw is None:
        return _error("accepted without a price", reason, reference)
    price_minor = parse_price_minor(raw)
    if price_minor is None:
        return _error(f"unreadable price {_text_of(raw, 32)!r}", reason, reference)
    if price_minor == 0:
        reason = reason or "zero bid"
        return BuyerAnswer(outcome=Outcome.REJECTED, reference=reference, reason=reason)
    return BuyerAnswer(
        outcome=Outcome.ACCEPTED, price_minor=price_minor, reference=reference, reason=reason
    )
