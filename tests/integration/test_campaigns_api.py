"""Campaigns, buyer accounts, supplier terms and vertical money settings over the API, on
SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import uuid

import pytest
import sqlalchemy as sa

from exchange import campaigns
from exchange.auth.parties import PartyKind
from exchange.matching import CampaignRules, PriceMode
from exchange.store.tables import campaigns as campaigns_table
from tests.conftest import decode, run

SOLAR_CAMPAIGN = {
    "name": "Solar CA/TX homeowners",
    "vertical": "solar",
    "filters": [
        {"kind": "states_in", "field": "state", "states": ["TX", "CA"]},
        {"kind": "boolean_is", "field": "homeowner", "value": True},
    ],
    "schedule": {"timezone": "America/Chicago", "days": {"mon": [{"start": 540, "end": 1020}]}},
    "caps": [{"window": "day", "max_count": 50}, {"window": "month", "max_spend_minor": 500_000}],
    "price_mode": "fixed",
    "fixed_price_minor": 2500,
}
TOKEN = "tok-s3cret-123"
PASSWORD = "pa55-s3cret"
QUERY_KEY = "qk-s3cret"
HEADER_KEY = "hk-s3cret"
ENDPOINTS = {
    "ping": {
        "url": f"https://buyer.example.com/ping?key={QUERY_KEY}",
        "auth": {"kind": "bearer", "token": TOKEN},
        "timeout_ms": 300,
    },
    "post": {
        "url": "https://buyer.example.com/post",
        "auth": {"kind": "basic", "username": "acme", "password": PASSWORD},
        "headers": {"X-Partner-Key": HEADER_KEY},
    },
}
SECRETS = (TOKEN, PASSWORD, QUERY_KEY, HEADER_KEY)


@pytest.fixture
def buyers(exchange):
    exchange.seed_verticals()
    a = exchange.new_party(PartyKind.BUYER, "Buyer A", timezone="America/Chicago")
    b = exchange.new_party(PartyKind.BUYER, "Buyer B")
    return exchange, a, b


def paths(response) -> list[str]:
    assert response.status_code == 422, response.text
    error = decode(response)["error"]
    assert error["code"] == "validation_failed"
    return [f["path"] for f in error["fields"]]


def stored_endpoints(settings, campaign_id):
    query = sa.select(campaigns_table.c.endpoints).where(campaigns_table.c.id == uuid.UUID(campaign_id))
    return run(settings, lambda conn: conn.execute(query)).scalar_one()


def test_create_list_get_replace_pause_resume(buyers):
    exchange, a, _ = buyers
    client = exchange.client
    r = client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=a.headers)
    assert r.status_code == 201, r.text
    created = decode(r)
    assert created["buyer_id"] == str(a.id)
    assert created["timezone"] == "America/Chicago"  # the buyer's zone by default
    assert (created["version"], created["active"], created["max_sells"], created["tier"]) == (1, True, 1, 1)
    assert sorted(created["filters"][0]["states"]) == ["CA", "TX"]
    assert created["caps"] == SOLAR_CAMPAIGN["caps"]
    assert created["endpoints"] is None
    assert created["returns"] == {"window_days": 0, "reasons": [], "max_rate_bps": 0}  # no returns
    cid = created["id"]

    assert decode(client.get(f"/v1/campaigns/{cid}", headers=a.headers)) == created
    page = decode(client.get("/v1/campaigns", headers=a.headers))
    assert [c["id"] for c in page["items"]] == [cid] and page["next_after"] is None
    assert decode(client.get("/v1/campaigns?vertical=auto_insurance", headers=a.headers))["items"] == []

    changed = SOLAR_CAMPAIGN | {"fixed_price_minor": 3000, "timezone": "America/Denver", "max_sells": 3}
    r = client.put(f"/v1/campaigns/{cid}", json=changed, headers=a.headers)
    assert r.status_code == 200, r.text
    replaced = decode(r)
    assert (replaced["version"], replaced["fixed_price_minor"], replaced["timezone"]) == (2, 3000, "America/Denver")
    assert replaced["created_at"] == created["created_at"]

    r = client.post(f"/v1/campaigns/{cid}/pause", headers=a.headers)
    assert r.status_code == 200 and decode(r)["active"] is False and decode(r)["version"] == 2
    r = client.post(f"/v1/campaigns/{cid}/resume", headers=a.headers)
    assert r.status_code == 200 and decode(r)["active"] is True

    campaign = run(exchange.settings, lambda conn: campaigns.get(conn, uuid.UUID(cid)))
    rules = campaigns.rules_of(campaign)
    assert isinstance(rules, CampaignRules)
    assert (rules.campaign_id, rules.buyer_id, rules.vertical) == (cid, str(a.id), "solar")
    assert (rules.price_mode, rules.fixed_price_minor, rules.max_sells) == (PriceMode.FIXED, 3000, 3)
    assert rules.filters[0].states == frozenset({"CA", "TX"})


def test_validation_names_every_problem_and_stores_nothing(buyers):
    exchange, a, _ = buyers
    bad = SOLAR_CAMPAIGN | {
        "timezone": "Mars/Olympus_Mons",
        "fixed_price_minor": None,
        "filters": [
            {"kind": "enum_in", "field": "colour", "values": ["red"]},
            {"kind": "expression", "expression": "first_name == 'Ana'"},  # PII
            {"kind": "states_in", "field": "state", "states": ["TX"]},
        ],
        "schedule": {
            "timezone": "America/Chicago",
            "days": {"mon": [{"start": 540, "end": 720}, {"start": 600, "end": 900}]},
        },
        "caps": [{"window": "day"}],
        "endpoints": {"post": {"url": "ftp://buyer.example.com"}},
    }
    r = exchange.client.post("/v1/campaigns", json=bad, headers=a.headers)
    assert paths(r) == [
        "timezone",
        "fixed_price_minor",
        "schedule.days.mon[1]",
        "filters[0].field",
        "filters[1].expression",
        "caps[0]",
        "endpoints.post",
    ]

    live = SOLAR_CAMPAIGN | {"price_mode": "live", "fixed_price_minor": None, "vertical": "pet_rocks"}
    assert paths(exchange.client.post("/v1/campaigns", json=live, headers=a.headers)) == [
        "vertical",
        "endpoints",
    ]
    live_without_ping = live | {"vertical": "solar", "endpoints": {"post": ENDPOINTS["post"]}}
    r = exchange.client.post("/v1/campaigns", json=live_without_ping, headers=a.headers)
    assert paths(r) == ["endpoints.ping"]

    # Wrong types are refused by the decoder, also as 422 with a path.
    r = exchange.client.post("/v1/campaigns", json=SOLAR_CAMPAIGN | {"tier": 0}, headers=a.headers)
    assert paths(r) == ["tier"]
    listed = decode(exchange.client.get("/v1/campaigns", headers=exchange.operator.headers))
    assert listed["items"] == []


def test_each_buyer_sees_only_its_own_campaigns(buyers):
    exchange, a, b = buyers
    client = exchange.client
    cid = decode(client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=a.headers))["id"]
    mine = decode(client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=b.headers))["id"]

    for response in (
        client.get(f"/v1/campaigns/{cid}", headers=b.headers),
        client.put(f"/v1/campaigns/{cid}", json=SOLAR_CAMPAIGN, headers=b.headers),
        client.post(f"/v1/campaigns/{cid}/pause", headers=b.headers),
        client.get(f"/v1/campaigns?buyer_id={a.id}", headers=b.headers),
        client.post("/v1/campaigns", json=SOLAR_CAMPAIGN | {"buyer_id": str(a.id)}, headers=b.headers),
    ):
        assert response.status_code == 403, response.text
        assert decode(response)["error"]["code"] == "forbidden"
    assert [c["id"] for c in decode(client.get("/v1/campaigns", headers=b.headers))["items"]] == [mine]
    assert client.get(f"/v1/campaigns/{a.id}", headers=a.headers).status_code == 404

    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert client.get("/v1/campaigns", headers=supplier.headers).status_code == 403
    assert client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=supplier.headers).status_code == 403

    op = exchange.operator.headers
    assert {c["id"] for c in decode(client.get("/v1/campaigns", headers=op))["items"]} == {cid, mine}
    assert [c["id"] for c in decode(client.get(f"/v1/campaigns?buyer_id={a.id}", headers=op))["items"]] == [cid]
    assert paths(client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=op)) == ["buyer_id"]
    r = client.post("/v1/campaigns", json=SOLAR_CAMPAIGN | {"buyer_id": str(supplier.id)}, headers=op)
    assert paths(r) == ["buyer_id"]
    team = exchange.new_party(PartyKind.TEAM)
    r = client.post("/v1/campaigns", json=SOLAR_CAMPAIGN | {"buyer_id": str(team.id)}, headers=op)
    assert r.status_code == 201 and decode(r)["buyer_id"] == str(team.id)
    r = client.put(f"/v1/campaigns/{cid}", json=SOLAR_CAMPAIGN | {"buyer_id": str(b.id)}, headers=op)
    assert paths(r) == ["buyer_id"]


def test_endpoint_secrets_are_never_shown_and_survive_a_round_trip(buyers):
    exchange, a, _ = buyers
    live = SOLAR_CAMPAIGN | {"price_mode": "live", "fixed_price_minor": None, "floor_minor": 500, "endpoints": ENDPOINTS}
    r = exchange.client.post("/v1/campaigns", json=live, headers=a.headers)
    assert r.status_code == 201, r.text
    for secret in SECRETS:
        assert secret not in r.text
    shown = decode(r)
    assert shown["endpoints"]["ping"]["auth"] == {"kind": "bearer", "token": "[redacted]"}
    assert shown["endpoints"]["post"]["auth"]["username"] == "acme"
    cid = shown["id"]
    got = exchange.client.get(f"/v1/campaigns/{cid}", headers=a.headers)
    assert all(secret not in got.text for secret in SECRETS)
    assert stored_endpoints(exchange.settings, cid)["ping"]["auth"]["token"] == TOKEN

    # Read, change one thing, write back: the redacted values keep the stored secrets.
    body = {k: v for k, v in shown.items() if k in live} | {"floor_minor": 700}
    r = exchange.client.put(f"/v1/campaigns/{cid}", json=body, headers=a.headers)
    assert r.status_code == 200, r.text
    assert decode(r)["floor_minor"] == 700 and all(secret not in r.text for secret in SECRETS)
    stored = stored_endpoints(exchange.settings, cid)
    assert stored["ping"]["auth"]["token"] == TOKEN
    assert stored["ping"]["url"] == ENDPOINTS["ping"]["url"]
    assert stored["post"]["auth"]["password"] == PASSWORD
    assert stored["post"]["headers"] == {"X-Partner-Key": HEADER_KEY}

    # A placeholder with nothing stored behind it is refused, not saved as a password.
    moved = copy.deepcopy(body)
    moved["endpoints"]["post"]["auth"] = {"kind": "header", "name": "X-Key", "value": "[redacted]"}
    moved["endpoints"]["ping"]["url"] = "https://buyer.example.com/v2/ping?key=redacted"
    r = exchange.client.put(f"/v1/campaigns/{cid}", json=moved, headers=a.headers)
    assert sorted(paths(r)) == ["endpoints.ping.url", "endpoints.post.auth.value"]

    fixed_with_ping = SOLAR_CAMPAIGN | {"endpoints": ENDPOINTS}
    r = exchange.client.post("/v1/campaigns", json=fixed_with_ping, headers=a.headers)
    assert paths(r) == ["endpoints.ping"]


def test_buyer_accounts(buyers):
    exchange, a, b = buyers
    client, op = exchange.client, exchange.operator.headers
    default = decode(client.get(f"/v1/buyers/{a.id}/account", headers=op))
    assert default == {
        "buyer_id": str(a.id), "balance_minor": 0, "credit_limit_minor": 0, "spendable_minor": 0,
        "margin": None, "penalty_bps": 0, "updated_at": None,
    }  # fmt: skip

    account = {
        "credit_limit_minor": 50_000,
        "margin": {"type": "fixed", "amount_minor": 300},
        "penalty_bps": 250,
    }
    r = client.put(f"/v1/buyers/{a.id}/account", json=account, headers=op)
    assert r.status_code == 200, r.text
    saved = decode(r)
    assert {k: saved[k] for k in account} == account and saved["updated_at"]
    assert saved["balance_minor"] == 0 and saved["spendable_minor"] == 50_000
    assert decode(client.get("/v1/account", headers=a.headers)) == saved
    assert decode(client.get("/v1/account", headers=b.headers))["balance_minor"] == 0

    # The money comes from the ledger: a deposit recorded by finance shows in the account.
    fin = exchange.new_party(PartyKind.FINANCE)
    r = client.post("/v1/ledger/deposits", json={"buyer_id": str(a.id), "amount_minor": 150_000}, headers=fin.headers)
    assert r.status_code == 201, r.text
    after = decode(client.get("/v1/account", headers=a.headers))
    assert after["balance_minor"] == 150_000 and after["spendable_minor"] == 200_000
    # The balance cannot be written through the account: only entries move money.
    r = client.put(f"/v1/buyers/{a.id}/account", json=account | {"balance_minor": 1}, headers=op)
    assert r.status_code == 422

    assert client.get(f"/v1/buyers/{a.id}/account", headers=a.headers).status_code == 403
    assert client.put(f"/v1/buyers/{a.id}/account", json=account, headers=a.headers).status_code == 403
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert client.get("/v1/account", headers=supplier.headers).status_code == 403
    assert client.get(f"/v1/buyers/{supplier.id}/account", headers=op).status_code == 404
    # A forgotten credit limit is refused, not defaulted to zero.
    r = client.put(f"/v1/buyers/{a.id}/account", json={"penalty_bps": 1}, headers=op)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0] == {"path": "credit_limit_minor", "reason": "required"}
    r = client.put(f"/v1/buyers/{a.id}/account", json=account | {"penalty_bps": 10_001}, headers=op)
    assert paths(r) == ["penalty_bps"]


def test_supplier_terms(buyers):
    exchange, a, _ = buyers
    client, op = exchange.client, exchange.operator.headers
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    default = decode(client.get("/v1/terms", headers=supplier.headers))
    assert default == {
        "supplier_id": str(supplier.id), "margin": None,
        "min_payout_minor": campaigns.DEFAULT_MIN_PAYOUT_MINOR, "auction_mode": None,
        "pings_per_second": campaigns.DEFAULT_PINGS_PER_SECOND,
        "ping_burst": campaigns.DEFAULT_PING_BURST, "return_payout": "claw_back", "hold_days": 0,
        "updated_at": None,
    }  # fmt: skip

    terms = {
        "margin": {"type": "percent", "bps": 1500, "min_margin_minor": 100},
        "min_payout_minor": 1200,
        "auction_mode": "tiers",
        "pings_per_second": 20,
        "ping_burst": 40,
        "return_payout": "absorb",
        "hold_days": 14,
    }
    r = client.put(f"/v1/suppliers/{supplier.id}/terms", json=terms, headers=op)
    assert r.status_code == 200, r.text
    assert {k: decode(r)[k] for k in terms} == terms
    assert decode(client.get(f"/v1/suppliers/{supplier.id}/terms", headers=op)) == decode(r)
    assert decode(client.get("/v1/terms", headers=supplier.headers)) == decode(r)

    assert client.get("/v1/terms", headers=a.headers).status_code == 403
    assert client.get(f"/v1/suppliers/{supplier.id}/terms", headers=supplier.headers).status_code == 403
    assert client.get(f"/v1/suppliers/{a.id}/terms", headers=op).status_code == 404
    r = client.put(f"/v1/suppliers/{supplier.id}/terms", json={"auction_mode": "dutch"}, headers=op)
    assert paths(r) == ["auction_mode"]


def test_vertical_margin_and_auction_mode(buyers):
    exchange, _, _ = buyers
    client, op = exchange.client, exchange.operator.headers
    solar = decode(client.get("/v1/verticals/solar", headers=op))
    assert solar["margin"] == {"type": "percent", "bps": 2000, "min_margin_minor": 0}
    assert solar["auction_mode"] == "free_pick"
    auto = decode(client.get("/v1/verticals/auto_insurance", headers=op))
    assert auto["margin"]["type"] == "bands" and auto["margin"]["bands"][-1]["up_to_minor"] is None

    spec = {k: solar[k] for k in ("slug", "name", "description", "currency", "dedupe_window_days", "fields")}
    bands = {
        "type": "bands",
        "bands": [
            {"up_to_minor": 2000, "rule": {"type": "fixed", "amount_minor": 400}},
            {"up_to_minor": None, "rule": {"type": "percent", "bps": 1800, "min_margin_minor": 0}},
        ],
    }
    r = client.put("/v1/verticals/solar", json=spec | {"margin": bands, "auction_mode": "tiers"}, headers=op)
    assert r.status_code == 200, r.text
    assert (decode(r)["margin"], decode(r)["auction_mode"]) == (bands, "tiers")
    assert decode(client.get("/v1/verticals/solar", headers=op))["margin"] == bands

    r = client.put("/v1/verticals/solar", json=spec, headers=op)  # left out: no margin, free pick
    assert (decode(r)["margin"], decode(r)["auction_mode"]) == (None, "free_pick")

    not_open = {"type": "bands", "bands": [{"up_to_minor": 2000, "rule": {"type": "fixed", "amount_minor": 1}}]}
    r = client.put("/v1/verticals/solar", json=spec | {"margin": not_open}, headers=op)
    assert paths(r) == ["margin"]


def test_a_campaign_and_account_made_over_the_api_buy_a_lead(buyers):
    """The auction reads the stored shapes: a fixed-price campaign, a funded account and the
    seeded vertical's 20 % margin sell one lead at the campaign's price."""
    from tests.integration.test_intake_api import solar_lead

    exchange, a, _ = buyers
    op = exchange.operator.headers
    account = {"credit_limit_minor": 0}
    assert exchange.client.put(f"/v1/buyers/{a.id}/account", json=account, headers=op).status_code == 200
    deposit = {"buyer_id": str(a.id), "amount_minor": 10_000}
    assert exchange.client.post("/v1/ledger/deposits", json=deposit, headers=op).status_code == 201
    campaign = SOLAR_CAMPAIGN | {"schedule": None}
    assert exchange.client.post("/v1/campaigns", json=campaign, headers=a.headers).status_code == 201
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    assert r.status_code == 201, r.text
    assert (decode(r)["status"], decode(r)["payout_minor"]) == ("sold", 2000)
    assert decode(exchange.client.get("/v1/account", headers=a.headers))["balance_minor"] == 7_500
    # The sale is one balanced entry: the books still sum to zero and pair with the sale.
    lead_id = decode(r)["lead_id"]
    ledger = decode(exchange.client.get(f"/v1/ledger/leads/{lead_id}", headers=op))
    assert len(ledger) == 1 and sum(p["amount_minor"] for p in ledger[0]["postings"]) == 0
    reconciliation = decode(exchange.client.get("/v1/ledger/reconciliation", headers=op))
    assert reconciliation["ok"] is True and reconciliation["sales_checked"] == 1


def test_a_buyer_reads_its_own_signing_secret(buyers):
    from exchange.auction.context import signing_secret

    exchange, a, b = buyers
    got = decode(exchange.client.get("/v1/account/signing-secret", headers=a.headers))
    assert got["secret"] == signing_secret(exchange.settings, str(a.id))
    assert got["secret"] != signing_secret(exchange.settings, str(b.id))
    assert got["signature_header"] == "X-Exchange-Signature"
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert exchange.client.get("/v1/account/signing-secret", headers=supplier.headers).status_code == 403


def test_a_replace_made_from_an_old_version_is_refused_and_changes_nothing(buyers):
    """Two editors read version 1; the first saves (version 2); the second's save, made from
    version 1, would silently undo the first's change: it gets 409 and nothing changes."""
    exchange, a, _ = buyers
    client = exchange.client
    created = decode(client.post("/v1/campaigns", json=SOLAR_CAMPAIGN, headers=a.headers))
    cid = created["id"]
    first = SOLAR_CAMPAIGN | {"fixed_price_minor": 3000, "version": 1}
    r = client.put(f"/v1/campaigns/{cid}", json=first, headers=a.headers)
    assert r.status_code == 200 and decode(r)["version"] == 2, r.text
    second = SOLAR_CAMPAIGN | {"caps": [{"window": "day", "max_count": 5}], "version": 1}
    r = client.put(f"/v1/campaigns/{cid}", json=second, headers=a.headers)
    assert r.status_code == 409, r.text
    error = decode(r)["error"]
    assert (error["code"], error["details"]) == ("version_conflict", {"version": 2})
    now = decode(client.get(f"/v1/campaigns/{cid}", headers=a.headers))
    assert (now["version"], now["fixed_price_minor"], now["caps"]) == (2, 3000, SOLAR_CAMPAIGN["caps"])
    r = client.put(f"/v1/campaigns/{cid}", json=second | {"version": 2}, headers=a.headers)
    assert r.status_code == 200 and decode(r)["version"] == 3, r.text  # made from the latest
    r = client.put(f"/v1/campaigns/{cid}", json=SOLAR_CAMPAIGN, headers=a.headers)
    assert r.status_code == 200, r.text  # no version: the last write wins, as before
