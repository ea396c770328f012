"""The generic webhook: our own JSON, signed like requests to buyers (exchange.delivery.signing).

    POST <url>
    X-Exchange-Timestamp / X-Exchange-Signature: v1=<hmac> / X-Exchange-Delivery-Id: <sync id>
    {"event": "sold", "lead": {...}, "sale": {...}}   (or "assignment" / "outcome")

Any 2xx is synced; a JSON answer's ``id`` (if a string) is kept as the record's id and sent
back as ``external_id`` on the lead's later events."""

from __future__ import annotations

from typing import Any

import msgspec

from exchange.crm.adapters import Answer, LeadView, Verdict, json_body
from exchange.crm.messages import EVENT_ASSIGNED, EVENT_SOLD, CrmConfig
from exchange.delivery import signing
from exchange.delivery.adapter import HttpRequest


def details_key(event: str) -> str:
    return {EVENT_SOLD: "sale", EVENT_ASSIGNED: "assignment"}.get(event, "outcome")


def payload(view: LeadView, external_id: str | None) -> dict[str, Any]:
    lead = {
        "id": view.id, "vertical": view.vertical, "fields": view.fields, "pii": view.pii,
        "score": view.score, "priority": view.priority, "source": view.source,
        "channel": view.channel, "created_at": view.created_at.isoformat(),
    }  # fmt: skip
    return {
        "event": view.event,
        "lead": lead,
        details_key(view.event): view.details,
        "external_id": external_id,
    }


def build(
    config: CrmConfig,
    secret: str | None,
    view: LeadView,
    *,
    external_id: str | None,
    sync_id: str,
    now_s: int,
) -> HttpRequest:
    body = msgspec.json.encode(payload(view, external_id))
    headers = {"Content-Type": "application/json", signing.DELIVERY_ID_HEADER: sync_id}
    if secret:
        headers[signing.TIMESTAMP_HEADER] = str(now_s)
        headers[signing.SIGNATURE_HEADER] = signing.sign(secret, now_s, body)
    return HttpRequest(
        kind="post", timeout_ms=config.timeout_ms, method="POST", url=config.url,
        headers=headers, body=body,
    )  # fmt: skip


def parse(status: int, body: bytes, external_id: str | None) -> Answer:
    """A 2xx answer (the sender classifies the rest by status)."""
    found = json_body(body)
    record_id = found.get("id") if isinstance(found, dict) else None
    if not isinstance(record_id, str) or not record_id:
        record_id = external_id
    return Answer(verdict=Verdict.SYNCED, external_id=record_id)


def refused(status: int, body: bytes) -> Answer | None:
    """Nothing special: the status decides."""
    return None
