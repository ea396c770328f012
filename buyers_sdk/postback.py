"""Signed postback URLs: report an outcome by calling a URL, with no API key (from a CRM's
webhook, a dialer, a spreadsheet macro). Get your secret once with ``client.postback_info()``::

    url = postback_url("https://exchange.example.com", info.secret, lead_id, info.party_id,
                       "won", value_minor=125_000)
    httpx.get(url)  # or POST; 201 the first time, 200 for a repeat

The signature (``sig``) is ``v1=`` + hex HMAC-SHA256(secret, ``b"<ts>." + canonical``), where
``canonical`` is every other parameter sorted by name, each ``name=value`` percent-encoded
(nothing left unescaped) and joined by ``&``. The exchange refuses a ``ts`` more than
``receiver.TOLERANCE_S`` seconds from its clock: build the URL when you call it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from buyers_sdk.receiver import sign

POSTBACK_PATH = "/v1/postbacks/outcome"
SIG_PARAM = "sig"


def _enc(text: str) -> str:
    return quote(text, safe="")


def canonical(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    """The signed form of a postback's parameters: every one but ``sig``, sorted, encoded."""
    items = params.items() if isinstance(params, Mapping) else params
    pairs = sorted((k, v) for k, v in items if k != SIG_PARAM)
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in pairs).encode()


def postback_url(
    base_url: str,
    secret: str,
    lead_id: uuid.UUID | str,
    party_id: uuid.UUID | str,
    kind: str,
    *,
    value_minor: int | None = None,
    currency: str | None = None,
    reason: str | None = None,
    occurred_at: dt.datetime | None = None,
    ts: int | None = None,
) -> str:
    """A signed URL reporting ``kind`` on ``lead_id`` as ``party_id`` (``ts``: now)."""
    params = {"lead_id": str(lead_id), "party_id": str(party_id), "kind": kind}
    if value_minor is not None:
        params["value_minor"] = str(value_minor)
    if currency is not None:
        params["currency"] = currency
    if reason is not None:
        params["reason"] = reason
    if occurred_at is not None:
        params["occurred_at"] = occurred_at.isoformat()
    params["ts"] = str(int(time.time()) if ts is None else ts)
    body = canonical(params)
    sig = sign(secret, int(params["ts"]), body)
    return f"{base_url.rstrip('/')}{POSTBACK_PATH}?{body.decode()}&{SIG_PARAM}={_enc(sig)}"
