"""HubSpot, CRM v3 contacts (developers.hubspot.com/docs/api/crm/contacts), with a private
app's access token.

    create   POST  {base}/crm/v3/objects/contacts       {"properties": {...}}
             -> 201 {"id": "512", "properties": {...}, "createdAt": ..., "archived": false}
    update   PATCH {base}/crm/v3/objects/contacts/{id}  {"properties": {...}}
             -> 200 {"id": "512", ...}
    conflict 409 {"status": "error", "message": "Contact already exists. Existing ID: 512",
                  "category": "CONFLICT"}  -> update that contact instead

Properties: HubSpot's standard contact properties from the lead's fields (``DEFAULT_MAP``,
extended by the connection's field map; a custom property must exist in the portal) and
``hs_lead_status`` from the event."""

from __future__ import annotations

import re

import msgspec

from exchange.crm.adapters import Answer, LeadView, Verdict, error_text, json_body, mapped
from exchange.crm.messages import CrmConfig
from exchange.delivery.adapter import HttpRequest

DEFAULT_BASE_URL = "https://api.hubapi.com"
CONTACTS_PATH = "/crm/v3/objects/contacts"
DEFAULT_MAP = {
    "email": "email", "first_name": "firstname", "last_name": "lastname", "phone": "phone",
    "zip": "zip", "state": "state", "city": "city", "address": "address",
}  # fmt: skip
# hs_lead_status's built-in options, by event.
LEAD_STATUS = {
    "sold": "NEW", "assigned": "NEW", "contacted": "CONNECTED", "qualified": "OPEN_DEAL",
    "appointment": "IN_PROGRESS", "won": "OPEN_DEAL", "lost": "UNQUALIFIED",
    "bad_lead": "UNQUALIFIED",
}  # fmt: skip
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


def properties(config: CrmConfig, view: LeadView) -> dict[str, object]:
    props = mapped(view, DEFAULT_MAP, config.field_map)
    props["hs_lead_status"] = LEAD_STATUS.get(view.outcome or view.event, "OPEN")
    return props


def build(
    config: CrmConfig,
    secret: str | None,
    view: LeadView,
    *,
    external_id: str | None,
    sync_id: str,
    now_s: int,
) -> HttpRequest:
    base = config.url.rstrip("/")
    if external_id:
        method, url = "PATCH", f"{base}{CONTACTS_PATH}/{external_id}"
    else:
        method, url = "POST", f"{base}{CONTACTS_PATH}"
    body = msgspec.json.encode({"properties": properties(config, view)})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret or ''}"}
    return HttpRequest(
        kind="post", timeout_ms=config.timeout_ms, method=method, url=url, headers=headers,
        body=body, secret_headers=("Authorization",),
    )  # fmt: skip


def parse(status: int, body: bytes, external_id: str | None) -> Answer:
    found = json_body(body)
    record_id = found.get("id") if isinstance(found, dict) else None
    if isinstance(record_id, (str, int)) and str(record_id):
        return Answer(verdict=Verdict.SYNCED, external_id=str(record_id))
    if external_id:  # an update answered without an id: the record is the one we updated
        return Answer(verdict=Verdict.SYNCED, external_id=external_id)
    return Answer(verdict=Verdict.FAILED, error=error_text(status, b"created, but no id: " + body))


def refused(status: int, body: bytes) -> Answer | None:
    """A 409 on an email HubSpot already has: update that contact (its id is in the message)."""
    if status != 409:
        return None
    found = json_body(body)
    message = found.get("message") if isinstance(found, dict) else None
    match = _EXISTING_ID.search(message) if isinstance(message, str) else None
    if match is None:
        return None
    return Answer(verdict=Verdict.UPDATE, external_id=match.group(1))
