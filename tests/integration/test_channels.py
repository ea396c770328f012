"""Intake adapters end to end, on SQLite and PostgreSQL: each source's documented sample payload
(tests/fixtures/channels) becomes a validated lead, recorded with its channel and source and
handed to the vertical's team; each malformed or unauthenticated payload gets a clear error and
stores nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.channels.meta import FetchFailed
from exchange.store.tables import leads
from tests.conftest import decode, run
from tests.integration.test_intake_api import row_counts
from tests.integration.test_teams import Team

SAMPLES = Path(__file__).parent.parent / "fixtures" / "channels"
GOOGLE_KEY = "test_key"  # the sample's google_key
VERIFY_TOKEN = "meta-verify-token-1"
APP_SECRET = "meta-app-secret-1"
CONSTANTS = {"homeowner": "yes", "property_type": "single_family"}

FORM_MAPPING = {
    "fields": {"zip": "zip", "state": "state", "phone": "phone", "email": "email",
               "address": "address", "bill": "monthly_electric_bill"},
    "split_name": {"name": ["first_name", "last_name"]},
    "constants": CONSTANTS,
    "consent": {"tcpa": "tcpa_text"},
    "sub_ids": {"utm_campaign": "sub1"},
}  # fmt: skip
GOOGLE_MAPPING = {
    "fields": {"PHONE_NUMBER": "phone", "EMAIL": "email", "POSTAL_CODE": "zip", "REGION": "state",
               "STREET_ADDRESS": "address", "CITY": "city",
               "what_is_your_average_monthly_electric_bill?": "monthly_electric_bill"},
    "split_name": {"FULL_NAME": ["first_name", "last_name"]},
    "constants": CONSTANTS,
}  # fmt: skip
META_MAPPING = {
    "fields": {"email": "email", "phone_number": "phone", "zip_code": "zip", "state": "state",
               "street_address": "address", "monthly_electric_bill": "monthly_electric_bill"},
    "split_name": {"full_name": ["first_name", "last_name"]},
    "constants": CONSTANTS,
}  # fmt: skip
CSV_MAPPING = {
    "fields": {"First Name": "first_name", "Last Name": "last_name", "Phone": "phone", "Email": "email",
               "Zip": "zip", "State": "state", "Street": "address", "Bill": "monthly_electric_bill"},
    "constants": CONSTANTS,
}  # fmt: skip
EMAIL_MAPPING = {
    "fields": {"Phone": "phone", "Zip": "zip", "State": "state", "Address": "address",
               "Monthly bill": "monthly_electric_bill"},
    "split_name": {"Name": ["first_name", "last_name"]},
    "constants": CONSTANTS,
    "sender_field": "email",
}  # fmt: skip


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


class Recorded:
    """Graph API answers recorded from the documented lead shape, by leadgen id."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def fetch(self, leadgen_id: str) -> dict[str, Any]:
        self.asked.append(leadgen_id)
        if leadgen_id not in self.answers:
            raise FetchFailed("not recorded")
        return self.answers[leadgen_id]


@pytest.fixture
def team(exchange) -> Team:
    team = Team(exchange)
    team.configure(strategy="round_robin")
    team.worker = team.agent()
    return team


def add_source(team: Team, channel: str, mapping: dict, headers=None, **extra: Any) -> dict:
    body = {"vertical": "solar", "channel": channel, "name": f"{channel} source",
            "source": f"{channel}-src", "mapping": mapping, **extra}  # fmt: skip
    r = team.client.post("/v1/intake-sources", json=body, headers=headers or team.supplier.headers)
    assert r.status_code == 201, r.text
    return decode(r)


def lead_row(team: Team, lead_id: str) -> sa.Row:
    async def work(conn):
        return (await conn.execute(sa.select(leads).where(leads.c.id == uuid.UUID(lead_id)))).one()

    return run(team.exchange.settings, work)


def assert_taken_and_routed(
    team: Team, lead_id: str, source: dict, *, test: bool = False
) -> sa.Row:
    row = lead_row(team, lead_id)
    assert row.channel == source["channel"]
    assert row.intake_source_id == uuid.UUID(source["id"])
    assert row.source == source["source"]
    assert row.supplier_id == team.supplier.id
    assert row.test is test
    assert row.status in ("sold", "unsold")  # as the market decides: nobody buys here
    if not test:  # the team of the vertical's route works it, as for a native post
        assert team.route(uuid.UUID(lead_id)).agent_id == team.worker.id
    return row


# --- HTML form ---------------------------------------------------------------------------------

FORM = {"name": "Ana Maria Garcia", "phone": "(415) 555-2671", "email": "ana@example.com",
        "zip": "94103", "state": "CA", "address": "1 Market St", "bill": "$150",
        "tcpa": "I agree to be called.", "utm_campaign": "spring", "submit": "Get quotes"}  # fmt: skip


def test_form_post_redirects_back_with_the_lead_and_records_the_browser(team):
    source = add_source(team, "form", FORM_MAPPING, settings={
        "success_url": "https://quotes.example.com/thanks?x=1",
        "error_url": "https://quotes.example.com/oops", "honeypot_field": "website"})  # fmt: skip
    assert source["path"] == f"/v1/forms/{source['token']}" and "secret" not in source
    r = team.client.post(source["path"], data=FORM, follow_redirects=False,
                         headers={"Referer": "https://quotes.example.com/solar", "User-Agent": "Browser/1"})  # fmt: skip
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("https://quotes.example.com/thanks?x=1&lead_id=")
    lead_id = location.split("lead_id=")[1]
    row = assert_taken_and_routed(team, lead_id, source)
    assert row.consent["landing_page_url"] == "https://quotes.example.com/solar"
    assert row.consent["user_agent"] == "Browser/1"
    assert row.consent["tcpa_text"] == "I agree to be called."
    assert row.sub_ids == {"sub1": "spring"}
    pii = decode(team.client.get(f"/v1/leads/{lead_id}?include_pii=true", headers=team.op))["pii"]
    assert (pii["first_name"], pii["last_name"]) == ("Ana Maria", "Garcia")

    # A bot filling the hidden field is thanked and forgotten.
    before = row_counts(team.exchange.settings)
    r = team.client.post(source["path"], data=dict(FORM, website="spam"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "https://quotes.example.com/thanks?x=1"
    assert row_counts(team.exchange.settings) == before


def test_bad_form_post_goes_to_the_error_page_or_gets_json_and_stores_nothing(team):
    source = add_source(
        team, "form", FORM_MAPPING, settings={"error_url": "https://quotes.example.com/oops"}
    )
    before = row_counts(team.exchange.settings)
    bad = dict(FORM, phone="555", zip="")
    r = team.client.post(source["path"], data=bad, follow_redirects=False)
    assert r.status_code == 303
    assert (
        r.headers["location"]
        == "https://quotes.example.com/oops?error=validation_failed&fields=zip%2Cphone"
    )
    r = team.client.post(source["path"], data=bad, headers={"Accept": "application/json"})
    assert r.status_code == 422
    error = decode(r)["error"]
    assert error["code"] == "validation_failed"
    assert {f["path"] for f in error["fields"]} == {"form.phone", "form.zip"}
    # Not a form at all, and an unknown token.
    r = team.client.post(source["path"], json=FORM, headers={"Accept": "application/json"})
    assert r.status_code == 415
    r = team.client.post("/v1/forms/not-a-token", data=FORM)
    assert r.status_code == 404
    assert row_counts(team.exchange.settings) == before


# --- Google Ads --------------------------------------------------------------------------------


def test_google_ads_sample_lead_is_taken_once_and_its_test_flag_kept(team):
    source = add_source(team, "google_ads", GOOGLE_MAPPING, secret=GOOGLE_KEY)
    payload = json.loads(sample("google_ads_lead.json"))
    r = team.client.post(source["path"], json=payload)
    assert r.status_code == 200, r.text
    out = decode(r)
    row = assert_taken_and_routed(team, out["lead_id"], source, test=True)
    assert row.fields["zip"] == "94043" and row.fields["state"] == "CA"
    # Google resends a lead it got no 200 for: the same lead, not a second one.
    before = row_counts(team.exchange.settings)
    again = team.client.post(source["path"], json=payload)
    assert again.status_code == 200 and decode(again)["lead_id"] == out["lead_id"]
    assert row_counts(team.exchange.settings) == before

    live = dict(payload, is_test=False, lead_id="live-1")
    r = team.client.post(source["path"], json=live)
    assert r.status_code == 200, r.text
    assert_taken_and_routed(team, decode(r)["lead_id"], source)


def test_google_ads_wrong_key_or_bad_lead_is_refused_and_stores_nothing(team):
    source = add_source(team, "google_ads", GOOGLE_MAPPING)
    assert source["secret"]  # made up and shown once
    payload = dict(
        json.loads(sample("google_ads_lead.json")), google_key=source["secret"], is_test=False
    )
    before = row_counts(team.exchange.settings)
    assert (
        team.client.post(source["path"], json=dict(payload, google_key="wrong")).status_code == 403
    )
    assert (
        team.client.post(
            source["path"], json={k: v for k, v in payload.items() if k != "google_key"}
        ).status_code
        == 401
    )
    columns = [c for c in payload["user_column_data"] if c["column_id"] != "PHONE_NUMBER"]
    r = team.client.post(source["path"], json=dict(payload, user_column_data=columns))
    assert r.status_code == 422
    assert decode(r)["error"]["fields"] == [
        {"path": "user_column_data[PHONE_NUMBER]", "reason": "required on post"}
    ]
    r = team.client.post(
        source["path"], content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and decode(r)["error"]["code"] == "malformed_payload"
    r = team.client.post(source["path"], json={"lead_id": "x"})
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] in (
        "body",
        "user_column_data",
    )
    assert row_counts(team.exchange.settings) == before
    assert "secret" not in decode(
        team.client.get(f"/v1/intake-sources/{source['id']}", headers=team.supplier.headers)
    )


# --- Meta lead ads -----------------------------------------------------------------------------


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "Content-Type": "application/json"}


def meta_source(team: Team, answers: dict[str, Any]) -> tuple[dict, Recorded]:
    source = add_source(
        team, "meta", META_MAPPING, secret=VERIFY_TOKEN, settings={"app_secret": APP_SECRET}
    )
    recorded = Recorded(answers)
    team.client.app.state.meta_lead_fetcher = lambda _source: recorded
    return source, recorded


def test_meta_handshake_and_sample_notification_make_one_lead_per_leadgen_id(team):
    lead = json.loads(sample("meta_lead_444444444444.json"))
    source, recorded = meta_source(team, {"444444444444": lead})
    assert "app_secret" not in source["settings"]
    ok = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    r = team.client.get(source["path"], params=ok)
    assert r.status_code == 200 and r.text == "1158201444"
    assert (
        team.client.get(source["path"], params=dict(ok, **{"hub.verify_token": "x"})).status_code
        == 403
    )

    body = sample("meta_leadgen_notification.json")
    r = team.client.post(source["path"], content=body, headers=signed(body))
    assert r.status_code == 200, r.text
    [result] = decode(r)["leads"]
    assert result["status"] == "accepted" and recorded.asked == ["444444444444"]
    assert_taken_and_routed(team, result["lead_id"], source)

    # The same notification again (Meta retries): no second lead.
    before = row_counts(team.exchange.settings)
    r = team.client.post(source["path"], content=body, headers=signed(body))
    assert r.status_code == 200
    assert decode(r)["leads"] == [
        {"leadgen_id": "444444444444", "status": "duplicate", "lead_id": result["lead_id"]}
    ]
    assert row_counts(team.exchange.settings) == before


def test_meta_several_leads_in_one_notification_each_its_own(team):
    first = json.loads(sample("meta_lead_444444444444.json"))
    second = dict(first, id="555", field_data=[
        *[f for f in first["field_data"] if f["name"] not in ("email", "phone_number")],
        {"name": "email", "values": ["sam@example.com"]}, {"name": "phone_number", "values": ["+12125550199"]}])  # fmt: skip
    source, _ = meta_source(team, {"444444444444": first, "555": second})
    note = json.loads(sample("meta_leadgen_notification.json"))
    change = note["entry"][0]["changes"][0]
    note["entry"][0]["changes"].append(
        {"field": "leadgen", "value": dict(change["value"], leadgen_id="555")}
    )
    body = json.dumps(note).encode()
    r = team.client.post(source["path"], content=body, headers=signed(body))
    assert r.status_code == 200, r.text
    results = decode(r)["leads"]
    assert [x["status"] for x in results] == ["accepted", "accepted"]
    assert len({x["lead_id"] for x in results}) == 2


def test_meta_unsigned_or_bad_notifications_store_nothing(team):
    lead = json.loads(sample("meta_lead_444444444444.json"))
    no_phone = dict(lead, field_data=[f for f in lead["field_data"] if f["name"] != "phone_number"])
    source, _ = meta_source(team, {"444444444444": no_phone})
    body = sample("meta_leadgen_notification.json")
    before = row_counts(team.exchange.settings)
    r = team.client.post(source["path"], content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert (
        team.client.post(source["path"], content=body, headers=signed(body, "other")).status_code
        == 403
    )
    r = team.client.post(source["path"], content=body, headers=signed(body))
    assert r.status_code == 200  # Meta would only retry a lead that will never be valid
    [result] = decode(r)["leads"]
    assert result["status"] == "rejected"
    assert result["fields"] == [{"path": "field_data[phone_number]", "reason": "required on post"}]
    bad = b'{"object": "page", "entry": [{"id": "1", "changes": [{"field": "leadgen", "value": {}}]}]}'
    r = team.client.post(source["path"], content=bad, headers=signed(bad))
    assert r.status_code == 422 and decode(r)["error"]["code"] == "malformed_payload"
    # The platform could not give the lead: 502, so Meta retries.
    unknown = body.replace(b"444444444444", b"999")
    assert (
        team.client.post(source["path"], content=unknown, headers=signed(unknown)).status_code
        == 502
    )
    assert row_counts(team.exchange.settings) == before


# --- CSV ---------------------------------------------------------------------------------------

CSV = (
    "First Name,Last Name,Phone,Email,Zip,State,Street,Bill,Notes\r\n"
    "Ana,Garcia,(415) 555-2671,ana@example.com,94103,CA,1 Market St,$150,called twice\r\n"
    "Bob,Stone,555,bob@example.com,94103,CA,2 Market St,$120,\r\n"
    "\r\n"
    "Ann,Garcia,415-555-2671,ann@example.com,94103,CA,1 Market St,$150,\r\n"
    "Cy,Young,(212) 555-0142,cy@example.com,10001,NY,3 Main St,$99,\r\n"
)


def test_csv_batch_reports_every_row_and_takes_the_good_ones(team):
    source = add_source(team, "csv", CSV_MAPPING)
    assert source["path"] == f"/v1/intake-sources/{source['id']}/csv"
    r = team.client.post(f"{source['path']}?name=november.csv", content=CSV.encode(),
                         headers={**team.supplier.headers, "Content-Type": "text/csv"})  # fmt: skip
    assert r.status_code == 201, r.text
    batch = decode(r)
    assert (batch["rows"], batch["accepted"], batch["rejected"], batch["duplicates"]) == (
        4,
        2,
        2,
        1,
    )
    assert [(x["row"], x["status"]) for x in batch["report"]] == [
        (2, "accepted"), (3, "rejected"), (5, "duplicate"), (6, "accepted")]  # fmt: skip
    assert [f["path"] for f in batch["report"][1]["fields"]] == ["Phone"]  # named by its column
    assert batch["report"][2]["fields"] == [{"path": "Phone", "reason": "duplicate"}]
    for row in (batch["report"][0], batch["report"][3]):
        assert_taken_and_routed(team, row["lead_id"], source)
    again = decode(
        team.client.get(f"/v1/intake-batches/{batch['id']}", headers=team.supplier.headers)
    )
    assert again == batch
    other = team.exchange.new_party(PartyKind.SUPPLIER)
    assert (
        team.client.get(f"/v1/intake-batches/{batch['id']}", headers=other.headers).status_code
        == 403
    )
    assert (
        team.client.get(f"/v1/intake-sources/{source['id']}", headers=other.headers).status_code
        == 403
    )


def test_malformed_csv_is_refused_whole(team):
    source = add_source(team, "csv", CSV_MAPPING)
    headers = {**team.supplier.headers, "Content-Type": "text/csv"}
    before = row_counts(team.exchange.settings)
    for body in (
        CSV.encode("utf-16"),
        b"",
        b"\r\n\r\n",
        "a,a\r\n1,2\r\n".encode(),
        b"Phone,Zip\r\n",
    ):
        r = team.client.post(source["path"], content=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert decode(r)["error"]["code"] == "malformed_payload"
    r = team.client.post(
        source["path"],
        content=CSV.encode(),
        headers={**team.supplier.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 415
    assert row_counts(team.exchange.settings) == before


# --- Inbound email -----------------------------------------------------------------------------


def test_inbound_email_sample_becomes_a_lead_with_the_sender_address(team):
    source = add_source(team, "email", EMAIL_MAPPING)
    r = team.client.post(
        source["path"],
        content=sample("inbound_lead.eml"),
        headers={"Content-Type": "message/rfc822"},
    )
    assert r.status_code == 201, r.text
    batch = decode(r)
    assert batch["kind"] == "email" and batch["name"] == "New solar quote request"
    [row] = batch["report"]
    assert row["status"] == "accepted"
    assert_taken_and_routed(team, row["lead_id"], source)
    pii = decode(team.client.get(f"/v1/leads/{row['lead_id']}?include_pii=true", headers=team.op))[
        "pii"
    ]
    assert pii["email"] == "joe.mail@example.com" and pii["first_name"] == "Ana"


def test_html_only_email_is_read_and_a_bad_one_stores_nothing(team):
    source = add_source(team, "email", EMAIL_MAPPING)
    html = (b"From: a@example.com\r\nSubject: lead\r\nContent-Type: text/html\r\n\r\n"
            b"<html><body><p>Name: Cy Young</p><p>Phone: (212) 555-0142</p><p>Zip: 10001</p>"
            b"<div>State: NY</div><div>Address: 3 Main St</div><p>Monthly bill: 99</p></body></html>")  # fmt: skip
    r = team.client.post(source["path"], content=html, headers={"Content-Type": "message/rfc822"})
    assert r.status_code == 201, r.text
    before = row_counts(team.exchange.settings)
    headers = {"Content-Type": "message/rfc822"}
    r = team.client.post(source["path"], content=b"just some words", headers=headers)
    assert r.status_code == 422 and decode(r)["error"]["code"] == "malformed_payload"
    no_zip = html.replace(b"<p>Zip: 10001</p>", b"").replace(b"212", b"646")
    r = team.client.post(source["path"], content=no_zip, headers=headers)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"] == [{"path": "body.Zip", "reason": "required on post"}]
    assert (
        team.client.post("/v1/inbound-email/nope", content=html, headers=headers).status_code == 404
    )
    assert row_counts(team.exchange.settings) == before


# --- Sources -----------------------------------------------------------------------------------


def test_mapping_is_checked_against_the_vertical_and_sources_are_scoped(team):
    bad = {"fields": {"tel": "telephone"}, "constants": {"colour": "red"}, "consent": {"x": "nope"}}
    r = team.client.post("/v1/intake-sources", json={"vertical": "solar", "channel": "form", "name": "f", "mapping": bad},
                         headers=team.supplier.headers)  # fmt: skip
    assert r.status_code == 422
    assert {f["path"] for f in decode(r)["error"]["fields"]} == {
        "mapping.fields.tel", "mapping.constants.colour", "mapping.consent.x"}  # fmt: skip
    r = team.client.post("/v1/intake-sources", json={"vertical": "solar", "channel": "meta", "name": "m", "mapping": {}},
                         headers=team.supplier.headers)  # fmt: skip
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "settings.app_secret"
    mine = add_source(team, "form", FORM_MAPPING)
    other = team.exchange.new_party(PartyKind.SUPPLIER)
    theirs = add_source(team, "form", FORM_MAPPING, headers=team.op, supplier_id=str(other.id))
    listed = decode(team.client.get("/v1/intake-sources", headers=team.supplier.headers))["items"]
    assert [s["id"] for s in listed] == [mine["id"]]
    assert (
        team.client.put(
            f"/v1/intake-sources/{theirs['id']}", json={"name": "x"}, headers=team.supplier.headers
        ).status_code
        == 403
    )
    # An operator edits the mapping; turning the source off closes its URL.
    r = team.client.put(
        f"/v1/intake-sources/{mine['id']}",
        json={"active": False, "mapping": CSV_MAPPING},
        headers=team.op,
    )
    assert (
        r.status_code == 200
        and decode(r)["mapping"] == CSV_MAPPING
        and decode(r)["active"] is False
    )
    assert team.client.post(mine["path"], data=FORM).status_code == 404


def test_native_api_leads_record_no_channel(team):
    row = lead_row(team, str(team.post_lead()))
    assert (row.channel, row.intake_source_id) == (None, None)
