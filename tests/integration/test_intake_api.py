"""Direct post through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from exchange.auth.parties import PartyKind
from exchange.store.tables import metadata
from tests.conftest import decode, run

CONSENT = {
    "tcpa_text": "By clicking Get Quotes I agree to be called by ACME & partners at  the number above.",
    "trustedform_cert_url": "https://cert.trustedform.com/0123456789abcdef0123456789abcdef01234567",
    "jornaya_leadid": "5C3A1B2D-0E4F-4A5B-9C8D-7E6F5A4B3C2D",
    "ip_address": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64)  Gecko/20100101",
    "landing_page_url": "https://quotes.example.com/auto?utm_source=google&x=1",
    "consented_at": "2026-11-23T10:15:00Z",
}


def solar_lead(**overrides: Any) -> dict[str, Any]:
    fields = {
        "zip": "94103-1234",
        "state": "california",
        "homeowner": "yes",
        "property_type": "Single_Family",
        "monthly_electric_bill": "$1,234.5",
        "roof_age_years": "12",
        "first_name": "  Ana ",
        "last_name": "Garcia",
        "phone": "(415) 555-2671",
        "email": "Ana.Garcia@Example.COM",
        "address": "1 Market St",
    }
    fields.update(overrides)
    return {
        "vertical": "solar",
        "fields": fields,
        "source": "google",
        "sub_ids": {"sub1": "aff-9", "sub2": "creative-3"},
        "consent": CONSENT,
    }


def row_counts(settings) -> dict[str, int]:
    async def work(conn):
        return {
            t.name: (await conn.execute(sa.select(sa.func.count()).select_from(t))).scalar_one()
            for t in metadata.sorted_tables
        }

    return run(settings, work)


@pytest.fixture
def supplier(exchange):
    exchange.seed_verticals()
    return exchange.new_party(PartyKind.SUPPLIER, "Acme Leads")


def test_valid_lead_is_accepted_normalised_and_kept_with_consent_untouched(exchange, supplier):
    r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    assert r.status_code == 201, r.text
    out = decode(r)
    assert out["status"] == "unsold"
    assert out["vertical"] == "solar"
    lead_id = out["lead_id"]

    view = decode(exchange.client.get(f"/v1/leads/{lead_id}", headers=supplier.headers))
    assert view["fields"] == {
        "zip": "94103",
        "state": "CA",
        "homeowner": True,
        "property_type": "single_family",
        "monthly_electric_bill": 123450,
        "roof_age_years": 12,
    }
    assert "pii" not in view  # a supplier never reads PII back
    assert view["consent"] == CONSENT  # byte-for-byte, double spaces included
    assert view["source"] == "google"
    assert view["sub_ids"] == {"sub1": "aff-9", "sub2": "creative-3"}
    assert view["supplier_id"] == str(supplier.id)

    pii = decode(
        exchange.client.get(
            f"/v1/leads/{lead_id}?include_pii=true", headers=exchange.operator.headers
        )
    )["pii"]
    assert pii == {
        "first_name": "Ana",
        "last_name": "Garcia",
        "phone": "+14155552671",
        "email": "ana.garcia@example.com",
        "address": "1 Market St",
    }


def test_bad_lead_names_every_failing_field_and_stores_nothing(exchange, supplier):
    before = row_counts(exchange.settings)
    lead = solar_lead(
        zip="9410",
        state="Atlantis",
        monthly_electric_bill="12.345",
        phone="555",
        email="not-an-email",
        property_type="igloo",
        favourite_colour="blue",
    )
    del lead["fields"]["homeowner"]
    lead["consent"] = dict(CONSENT, ip_address="999.1.1.1", landing_page_url="ftp://x")
    r = exchange.client.post("/v1/leads", json=lead, headers=supplier.headers)
    assert r.status_code == 422, r.text
    error = decode(r)["error"]
    assert error["code"] == "validation_failed"
    paths = {f["path"]: f["reason"] for f in error["fields"]}
    assert paths == {
        "fields.favourite_colour": "unknown field for this vertical",
        "fields.zip": "expected 5 digits or ZIP+4",
        "fields.state": "not a US state code or name",
        "fields.homeowner": "required on post",
        "fields.property_type": paths["fields.property_type"],
        "fields.monthly_electric_bill": "at most 2 decimal places",
        "fields.phone": paths["fields.phone"],
        "fields.email": "not an email address",
        "consent.ip_address": "not an IPv4 or IPv6 address",
        "consent.landing_page_url": "expected an http(s) URL",
    }
    assert paths["fields.property_type"].startswith("must be one of: single_family")
    assert "phone" in paths["fields.phone"]
    assert row_counts(exchange.settings) == before


def test_wrong_types_and_unknown_vertical_are_422_with_paths(exchange, supplier):
    r = exchange.client.post(
        "/v1/leads", json={"vertical": "solar", "fields": [1, 2]}, headers=supplier.headers
    )
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "fields"

    r = exchange.client.post("/v1/leads", json=solar_lead() | {"vertical": "nope"}, headers=supplier.headers)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"] == [
        {"path": "vertical", "reason": "no active vertical named 'nope'"}
    ]

    r = exchange.client.post(
        "/v1/leads", content=b'{"vertical": "solar", "fields": {', headers=supplier.headers
    )
    assert r.status_code == 400
    assert decode(r)["error"]["code"] == "malformed_json"


def test_body_over_the_limit_is_413_and_stores_nothing(exchange, supplier):
    before = row_counts(exchange.settings)
    big = solar_lead(utility_provider="x" * (exchange.settings.max_body_bytes + 10))
    r = exchange.client.post("/v1/leads", json=big, headers=supplier.headers)
    assert r.status_code == 413
    assert decode(r)["error"]["code"] == "body_too_large"
    assert row_counts(exchange.settings) == before


def test_duplicates_inside_the_window_are_refused_and_outside_accepted(exchange, supplier):
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    with freeze_time(start, real_asyncio=True):
        first = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
        assert first.status_code == 201, first.text

    # Same phone, different email, 59 days later: still inside solar's 60-day window.
    with freeze_time(start + dt.timedelta(days=59, hours=23), real_asyncio=True):
        before = row_counts(exchange.settings)
        dup = exchange.client.post(
            "/v1/leads", json=solar_lead(email="other@example.com"), headers=supplier.headers
        )
        assert dup.status_code == 409, dup.text
        error = decode(dup)["error"]
        assert error["code"] == "duplicate"
        assert error["fields"] == [{"path": "fields.phone", "reason": "duplicate"}]
        assert row_counts(exchange.settings) == before

        # Same email in another format, new phone: the normalised email matches.
        dup_email = exchange.client.post(
            "/v1/leads",
            json=solar_lead(phone="212-555-0199", email="ANA.GARCIA@example.com"),
            headers=supplier.headers,
        )
        assert dup_email.status_code == 409
        assert decode(dup_email)["error"]["fields"] == [{"path": "fields.email", "reason": "duplicate"}]

    # A different supplier sending the same person is a duplicate too (the vertical's window).
    other = exchange.new_party(PartyKind.SUPPLIER)
    with freeze_time(start + dt.timedelta(days=30), real_asyncio=True):
        assert exchange.client.post("/v1/leads", json=solar_lead(), headers=other.headers).status_code == 409

    # Past the window the person may be sold again, and the window restarts from then.
    with freeze_time(start + dt.timedelta(days=60, minutes=1), real_asyncio=True):
        again = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
        assert again.status_code == 201, again.text
        assert exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers).status_code == 409


def test_duplicate_window_is_per_vertical_and_test_leads_skip_it(exchange, supplier):
    assert exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers).status_code == 201
    auto = {
        "vertical": "auto_insurance",
        "fields": {
            "zip": "94103", "state": "CA", "date_of_birth": "04/02/1985", "currently_insured": True,
            "vehicle_count": 1, "first_name": "Ana", "last_name": "Garcia",
            "phone": "(415) 555-2671", "email": "ana.garcia@example.com",
        },
    }  # fmt: skip
    assert exchange.client.post("/v1/leads", json=auto, headers=supplier.headers).status_code == 201
    test_lead = solar_lead() | {"test": True}
    for _ in range(2):
        r = exchange.client.post("/v1/leads", json=test_lead, headers=supplier.headers)
        assert r.status_code == 201 and decode(r)["test"] is True


def test_idempotency_key_replays_the_first_answer(exchange, supplier):
    headers = supplier.headers | {"Idempotency-Key": "order-42"}
    first = exchange.client.post("/v1/leads", json=solar_lead(), headers=headers)
    assert first.status_code == 201
    counts = row_counts(exchange.settings)

    again = exchange.client.post("/v1/leads", json=solar_lead(), headers=headers)
    assert again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert row_counts(exchange.settings) == counts

    conflict = exchange.client.post(
        "/v1/leads", json=solar_lead(first_name="Bob"), headers=headers
    )
    assert conflict.status_code == 422
    assert decode(conflict)["error"]["code"] == "idempotency_key_reused"
    assert row_counts(exchange.settings) == counts

    # Keys belong to a party: another supplier's same key is its own.
    other = exchange.new_party(PartyKind.SUPPLIER)
    r = exchange.client.post(
        "/v1/leads",
        json=solar_lead(phone="212-555-0199", email="x@example.com"),
        headers=other.headers | {"Idempotency-Key": "order-42"},
    )
    assert r.status_code == 201
    assert decode(r)["lead_id"] != decode(first)["lead_id"]


def test_idempotency_key_too_long_is_refused(exchange, supplier):
    limit = exchange.settings.idempotency_key_max_chars
    r = exchange.client.post(
        "/v1/leads", json=solar_lead(), headers=supplier.headers | {"Idempotency-Key": "k" * (limit + 1)}
    )
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "headers.Idempotency-Key"


def test_a_failure_midway_rolls_everything_back(exchange, supplier, monkeypatch):
    """An error after the dedupe key and lead rows are written leaves no trace."""
    from exchange.intake import service

    real_insert = service.lead_pii.insert

    class Boom(Exception):
        pass

    def failing_insert():
        raise Boom("disk full")

    before = row_counts(exchange.settings)
    monkeypatch.setattr(service.lead_pii, "insert", failing_insert)
    r = exchange.client.post(
        "/v1/leads", json=solar_lead(), headers=supplier.headers | {"Idempotency-Key": "k1"}
    )
    assert r.status_code == 500
    assert decode(r)["error"]["code"] == "internal_error"
    assert "disk full" not in r.text
    after = row_counts(exchange.settings)
    # The exchange's own record of the auction it ran (the internal ping, closed, and its
    # trace) stays; nothing of the lead does.
    for table in ("leads", "lead_pii", "dedupe_keys", "idempotency_keys", "sales", "cap_holds"):
        assert after[table] == before[table], table

    monkeypatch.setattr(service.lead_pii, "insert", real_insert)
    r = exchange.client.post(
        "/v1/leads", json=solar_lead(), headers=supplier.headers | {"Idempotency-Key": "k1"}
    )
    assert r.status_code == 201  # nothing half-done blocks the retry


def test_paging_is_bounded_and_scoped(exchange, supplier):
    other = exchange.new_party(PartyKind.SUPPLIER)
    for i in range(3):
        lead = solar_lead(phone=f"212-555-01{i:02d}", email=f"p{i}@example.com")
        assert exchange.client.post("/v1/leads", json=lead, headers=supplier.headers).status_code == 201
    lead = solar_lead(phone="212-555-0150", email="o@example.com")
    assert exchange.client.post("/v1/leads", json=lead, headers=other.headers).status_code == 201

    page = decode(exchange.client.get("/v1/leads?limit=2", headers=supplier.headers))
    assert len(page["items"]) == 2 and page["next_after"]
    rest = decode(
        exchange.client.get(f"/v1/leads?limit=2&after={page['next_after']}", headers=supplier.headers)
    )
    assert len(rest["items"]) == 1 and rest["next_after"] is None
    ids = {i["supplier_id"] for i in page["items"] + rest["items"]}
    assert ids == {str(supplier.id)}

    too_big = exchange.settings.page_size_max + 1
    r = exchange.client.get(f"/v1/leads?limit={too_big}", headers=supplier.headers)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "query.limit"

    r = exchange.client.get(f"/v1/leads?supplier_id={other.id}", headers=supplier.headers)
    assert r.status_code == 403
    everyone = decode(exchange.client.get("/v1/leads", headers=exchange.operator.headers))
    assert len(everyone["items"]) == 4
    assert uuid.UUID(everyone["items"][0]["lead_id"])
