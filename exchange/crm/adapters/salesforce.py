"""Salesforce, REST API sObject Lead (developer.salesforce.com, "Create a Record" / "Update a
Record"), with an OAuth access token.

    create  POST  {instance}/services/data/v59.0/sobjects/Lead/       {...} -> 201
            {"id": "00Q5e000001abcDEAQ", "success": true, "errors": []}
    update  PATCH {instance}/services/data/v59.0/sobjects/Lead/{id}   {...} -> 204, no body
    errors  4xx [{"message": "...", "errorCode": "REQUIRED_FIELD_MISSING", "fields": [...]}]

LastName and Company are required on a Lead: without the lead's own, "Unknown" and
"Individual" (the usual stand-ins for a person with no company)."""

from __future__ import annotations

import msgspec

from exchange.crm.adapters import Answer, LeadView, Verdict, error_text, json_body, mapped
from exchange.crm.messages import CrmConfig
from exchange.delivery.adapter import HttpRequest

LAST_NAME_FALLBACK = "Unknown"
COMPANY_FALLBACK = "Individual"
LEAD_SOURCE_DEFAULT = "Web"
DEFAULT_MAP = {
    "first_name": "FirstName", "last_name": "LastName", "email": "Email", "phone": "Phone",
    "zip": "PostalCode", "state": "State", "city": "City", "address": "Street",
    "company": "Company",
}  # fmt: skip
# The standard Lead Status picklist, by event.
STATUS = {
    "sold": "Open - Not Contacted", "assigned": "Open - Not Contacted",
    "contacted": "Working - Contacted", "qualified": "Working - Contacted",
    "appointment": "Working - Contacted", "won": "Closed - Converted",
    "lost": "Closed - Not Converted", "bad_lead": "Closed - Not Converted",
}  # fmt: skip


def record(config: CrmConfig, view: LeadView) -> dict[str, object]:
    out = mapped(view, DEFAULT_MAP, config.field_map)
    out.setdefault("LastName", LAST_NAME_FALLBACK)
    out.setdefault("Company", COMPANY_FALLBACK)
    out.setdefault("LeadSource", config.lead_source or LEAD_SOURCE_DEFAULT)
    out["Status"] = STATUS.get(view.outcome or view.event, STATUS["sold"])
    return out


def build(
    config: CrmConfig,
    secret: str | None,
    view: LeadView,
    *,
    external_id: str | None,
    sync_id: str,
    now_s: int,
) -> HttpRequest:
    base = f"{config.url.rstrip('/')}/services/data/{config.api_version}/sobjects/Lead/"
    method, url = ("PATCH", f"{base}{external_id}") if external_id else ("POST", base)
    body = msgspec.json.encode(record(config, view))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret or ''}"}
    return HttpRequest(
        kind="post", timeout_ms=config.timeout_ms, method=method, url=url, headers=headers,
        body=body, secret_headers=("Authorization",),
    )  # fmt: skip


def parse(status: int, body: bytes, external_id: str | None) -> Answer:
    if status == 204 or not body:  # an update: no body
        if external_id:
            return Answer(verdict=Verdict.SYNCED, external_id=external_id)
        return Answer(verdict=Verdict.FAILED, error=error_text(status, "created, but no id"))
    found = json_body(body)
    if not isinstance(found, dict):
        return Answer(verdict=Verdict.FAILED, error=error_text(status, body))
    if found.get("success") is False or found.get("errors"):
        return Answer(
            verdict=Verdict.FAILED,
            error=error_text(status, msgspec.json.encode(found.get("errors"))),
        )
    record_id = found.get("id")
    if isinstance(record_id, str) and record_id:
        return Answer(verdict=Verdict.SYNCED, external_id=record_id)
    if external_id:
        return Answer(verdict=Verdict.SYNCED, external_id=external_id)
    return Answer(verdict=Verdict.FAILED, error=error_text(status, b"created, but no id: " + body))


def refused(status: int, body: bytes) -> Answer | None:
    return None
