"""CRM adapters as pure translators: the requests they build for each event, and what the
CRMs' documented answers (HubSpot contacts v3, Salesforce sObject Lead, our webhook) mean."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from exchange.crm.adapters import LeadView, Verdict, error_text, hubspot, salesforce, webhook
from exchange.crm.messages import CrmConfig, CrmKind, wants
from exchange.crm.sender import classify
from exchange.delivery import signing
from exchange.delivery.transport import Exchange

CREATED = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.timezone.utc)


def view(event: str = "sold", **pii) -> LeadView:
    return LeadView(
        id="0b7c5a2e-0000-4000-8000-000000000001", vertical="solar",
        fields={"zip": "94103", "state": "CA", "homeowner": "yes"},
        pii={"first_name": "Ana", "last_name": "Garcia", "email": "ana@example.com",
             "phone": "+14155552671", **pii},
        score=72, priority="high", source="google", channel=None, created_at=CREATED,
        event=event, details={"sale_id": "s-1", "price_minor": 3000, "currency": "USD"},
    )  # fmt: skip


def test_hubspot_creates_a_contact_with_its_standard_properties():
    config = CrmConfig(url="https://api.hubapi.com/", field_map={"homeowner": "homeowner_c"})
    request = hubspot.build(config, "pat-na1-secret", view(), external_id=None, sync_id="x", now_s=1)
    assert (request.method, request.url) == ("POST", "https://api.hubapi.com/crm/v3/objects/contacts")
    assert request.headers["Authorization"] == "Bearer pat-na1-secret"
    assert request.redacted_headers()["Authorization"] != "Bearer pat-na1-secret"
    assert msgspec.json.decode(request.body) == {
        "properties": {
            "email": "ana@example.com", "firstname": "Ana", "lastname": "Garcia",
            "phone": "+14155552671", "zip": "94103", "state": "CA", "homeowner_c": "yes",
            "hs_lead_status": "NEW",
        }
    }  # fmt: skip


def test_hubspot_updates_the_contact_it_created_on_later_events():
    config = CrmConfig(url="https://api.hubapi.com")
    request = hubspot.build(config, "t", view("outcome:lost"), external_id="512", sync_id="x", now_s=1)
    assert (request.method, request.url) == ("PATCH", "https://api.hubapi.com/crm/v3/objects/contacts/512")
    assert msgspec.json.decode(request.body)["properties"]["hs_lead_status"] == "UNQUALIFIED"


def test_hubspot_answers():
    created = b'{"id": "512", "properties": {"email": "ana@example.com"}, "createdAt": "2026-11-24T09:30:00Z", "archived": false}'
    assert hubspot.parse(201, created, None) == hubspot.Answer(verdict=Verdict.SYNCED, external_id="512")
    conflict = b'{"status": "error", "message": "Contact already exists. Existing ID: 9051", "correlationId": "abc", "category": "CONFLICT"}'
    assert hubspot.refused(409, conflict) == hubspot.Answer(verdict=Verdict.UPDATE, external_id="9051")
    assert hubspot.refused(409, b'{"message": "conflict"}') is None
    answer = classify(CrmKind.HUBSPOT, Exchange(status=409, body=conflict), None)
    assert (answer.verdict, answer.external_id) == (Verdict.UPDATE, "9051")
    bad = b'{"status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR"}'
    answer = classify(CrmKind.HUBSPOT, Exchange(status=400, body=bad), None)
    assert answer.verdict is Verdict.FAILED and answer.error.startswith("HTTP 400: ")


def test_salesforce_creates_a_lead_with_its_required_fields():
    config = CrmConfig(url="https://acme.my.salesforce.com", lead_source="Purchased List")
    request = salesforce.build(config, "00D!tok", view(last_name=""), external_id=None, sync_id="x", now_s=1)
    assert (request.method, request.url) == (
        "POST", "https://acme.my.salesforce.com/services/data/v59.0/sobjects/Lead/"
    )
    assert request.headers["Authorization"] == "Bearer 00D!tok"
    body = msgspec.json.decode(request.body)
    assert body == {
        "FirstName": "Ana", "LastName": "Unknown", "Company": "Individual",
        "Email": "ana@example.com", "Phone": "+14155552671", "PostalCode": "94103",
        "State": "CA", "LeadSource": "Purchased List", "Status": "Open - Not Contacted",
    }  # fmt: skip


def test_salesforce_updates_and_answers():
    config = CrmConfig(url="https://acme.my.salesforce.com", api_version="v60.0")
    request = salesforce.build(config, "t", view("outcome:won"), external_id="00Q5e000001", sync_id="x", now_s=1)
    assert (request.method, request.url) == (
        "PATCH", "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/00Q5e000001"
    )
    assert msgspec.json.decode(request.body)["Status"] == "Closed - Converted"
    created = b'{"id": "00Q5e000001abcDEAQ", "success": true, "errors": []}'
    assert salesforce.parse(201, created, None).external_id == "00Q5e000001abcDEAQ"
    assert salesforce.parse(204, b"", "00Q5e000001").external_id == "00Q5e000001"
    missing = b'[{"message": "Required fields are missing: [LastName]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]'
    answer = classify(CrmKind.SALESFORCE, Exchange(status=400, body=missing), None)
    assert answer.verdict is Verdict.FAILED and "REQUIRED_FIELD_MISSING" in answer.error


def test_the_webhook_is_signed_like_requests_to_buyers():
    config = CrmConfig(url="https://crm.example.com/hook")
    request = webhook.build(config, "whsec", view(), external_id=None, sync_id="sync-1", now_s=1_700_000_000)
    assert (request.method, request.url) == ("POST", "https://crm.example.com/hook")
    assert request.headers[signing.DELIVERY_ID_HEADER] == "sync-1"
    assert signing.verify(
        "whsec", request.headers[signing.TIMESTAMP_HEADER], request.body,
        request.headers[signing.SIGNATURE_HEADER], now_s=1_700_000_000,
    )  # fmt: skip
    body = msgspec.json.decode(request.body)
    assert body["event"] == "sold" and body["sale"]["price_minor"] == 3000
    assert body["lead"]["pii"]["email"] == "ana@example.com" and body["lead"]["score"] == 72
    assert webhook.parse(200, b'{"id": "rec-7"}', None).external_id == "rec-7"
    assert webhook.parse(204, b"", "rec-7") == webhook.Answer(verdict=Verdict.SYNCED, external_id="rec-7")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, Verdict.SYNCED), (408, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
     (503, Verdict.RETRY), (400, Verdict.FAILED), (401, Verdict.FAILED), (404, Verdict.FAILED)],
)  # fmt: skip
def test_answers_are_classified_by_status(status, verdict):
    assert classify(CrmKind.WEBHOOK, Exchange(status=status, body=b"{}"), None).verdict is verdict


def test_a_transport_error_is_retried():
    answer = classify(CrmKind.WEBHOOK, Exchange(status=None, error="timeout", timed_out=True), None)
    assert answer.verdict is Verdict.RETRY and answer.error == "timeout"


def test_kept_errors_are_bounded_and_hold_no_token():
    text = error_text(401, b"bad header Authorization: Bearer sekrit-token " + b"x" * 2000)
    assert "sekrit" not in text and len(text) <= 500


def test_which_events_a_connection_takes():
    assert wants(["sold", "outcome:*"], "outcome:won") and not wants(["sold"], "assigned")
    assert wants(["outcome:won"], "outcome:won") and not wants(["outcome:won"], "outcome:lost")
