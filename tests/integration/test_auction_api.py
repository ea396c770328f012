"""The auction through the API with fixed-price campaigns, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from exchange.auth.parties import PartyKind
from exchange.store.tables import cap_counters, leads, sales
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, balance, fund, set_supplier_terms, set_vertical_margin

PERCENT_20 = {"type": "percent", "bps": 2000}


def ping_body(**overrides):
    lead = solar_lead(**overrides)
    pii = {"first_name", "last_name", "phone", "email", "address"}
    return {
        "vertical": "solar",
        "fields": {k: v for k, v in lead["fields"].items() if k not in pii},
        "source": "google",
    }


@pytest.fixture
def market(exchange):
    exchange.seed_verticals()
    set_vertical_margin(exchange.settings, "solar", PERCENT_20)
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    a = exchange.new_party(PartyKind.BUYER, "A")
    b = exchange.new_party(PartyKind.BUYER, "B")
    fund(exchange.settings, a.id, 100_000)
    fund(exchange.settings, b.id, 100_000)
    return exchange, supplier, a, b


def _sales(settings):
    return run(settings, lambda c: c.execute(sa.select(sales).order_by(sales.c.created_at))).all()


def test_direct_post_sells_to_the_highest_bid_at_its_own_price(market):
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=2500)
    best = add_campaign(exchange.settings, b.id, fixed_price_minor=3000)
    r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    assert r.status_code == 201, r.text
    out = decode(r)
    assert out["status"] == "sold" and out["sales"] == 1
    assert out["payout_minor"] == 2400  # 3000 less the vertical's 20%
    [sale] = _sales(exchange.settings)
    assert str(sale.campaign_id) == best
    assert (sale.price_minor, sale.payout_minor, sale.margin_minor) == (3000, 2400, 600)
    assert balance(exchange.settings, b.id) == 100_000 - 3000
    assert balance(exchange.settings, a.id) == 100_000
    lead = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}", headers=supplier.headers))
    assert lead["status"] == "sold"


def test_unsold_lead_keeps_its_reasons(market):
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, filters=[{"kind": "states_in", "field": "state", "states": ["TX"]}])
    add_campaign(exchange.settings, b.id, active=False)
    r = exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers)
    out = decode(r)
    assert r.status_code == 201 and out["status"] == "unsold"
    assert set(out["reasons"]) == {"filtered:state", "campaign_paused"}
    assert _sales(exchange.settings) == []


def test_ping_then_post(market):
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=2500)
    r = exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers)
    assert r.status_code == 200, r.text
    offer = decode(r)
    assert offer["status"] == "accepted" and offer["payout_minor"] == 2000
    assert offer["expires_at"] and offer["bids"] == []

    # PII on a ping is refused.
    bad = ping_body()
    bad["fields"]["phone"] = "4155552671"
    r = exchange.client.post("/v1/pings", json=bad, headers=supplier.headers)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"] == [
        {"path": "fields.phone", "reason": "PII is not accepted on a ping; send it on the post"}
    ]

    post = {"ping_id": offer["ping_id"], "fields": solar_lead()["fields"]}
    r = exchange.client.post("/v1/posts", json=post, headers=supplier.headers)
    assert r.status_code == 201, r.text
    sold = decode(r)
    assert sold["status"] == "sold" and sold["payout_minor"] == 2000

    again = exchange.client.post("/v1/posts", json=post, headers=supplier.headers)
    assert again.status_code == 201 and again.content == r.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(_sales(exchange.settings)) == 1

    other = dict(post, fields=solar_lead(first_name="Zed")["fields"])
    r = exchange.client.post("/v1/posts", json=other, headers=supplier.headers)
    assert r.status_code == 409 and decode(r)["error"]["code"] == "ping_used"


def test_post_may_omit_but_not_change_ping_fields(market):
    exchange, supplier, a, _ = market
    add_campaign(exchange.settings, a.id)
    offer = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
    changed = solar_lead(zip="10001", state="NY")["fields"]
    r = exchange.client.post("/v1/posts", json={"ping_id": offer["ping_id"], "fields": changed}, headers=supplier.headers)
    assert r.status_code == 422 and decode(r)["error"]["code"] == "contradicts_ping"
    assert [f["path"] for f in decode(r)["error"]["fields"]] == ["fields.zip", "fields.state"]

    pii_only = {k: v for k, v in solar_lead()["fields"].items() if k in {"first_name", "last_name", "phone", "email", "address"}}
    r = exchange.client.post("/v1/posts", json={"ping_id": offer["ping_id"], "fields": pii_only}, headers=supplier.headers)
    assert r.status_code == 201, r.text
    lead = decode(exchange.client.get(f"/v1/leads/{decode(r)['lead_id']}", headers=supplier.headers))
    assert lead["fields"]["monthly_electric_bill"] == 123450  # kept from the ping, not re-scaled


def test_expired_and_foreign_pings_are_refused(market):
    exchange, supplier, a, _ = market
    add_campaign(exchange.settings, a.id, caps=[{"window": "day", "max_count": 1}])
    start = dt.datetime(2026, 6, 1, 15, 0, tzinfo=dt.timezone.utc)
    with freeze_time(start, real_asyncio=True):
        offer = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
        other = exchange.new_party(PartyKind.SUPPLIER)
        post = {"ping_id": offer["ping_id"], "fields": solar_lead()["fields"]}
        r = exchange.client.post("/v1/posts", json=post, headers=other.headers)
        assert r.status_code == 403
        # The hold fills the day cap: a second ping finds no capacity.
        second = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
        assert second["status"] == "rejected" and second["reasons"] == ["cap_reached:day"]
    with freeze_time(start + dt.timedelta(minutes=3), real_asyncio=True):
        r = exchange.client.post("/v1/posts", json=post, headers=supplier.headers)
        assert r.status_code == 409 and decode(r)["error"]["code"] == "ping_expired"
        import asyncio

        from exchange.auction.service import expire_pings
        from exchange.store.db import Database

        async def sweep():
            db = Database(exchange.settings)
            try:
                return await expire_pings(db)
            finally:
                await db.dispose()

        assert asyncio.run(sweep()) == 1  # the offered ping; the rejected one was never open
        counters = run(exchange.settings, lambda c: c.execute(sa.select(cap_counters.c.count))).scalars().all()
        assert counters == [0]  # the held capacity came back
        third = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
        assert third["status"] == "accepted"


def test_caps_budgets_and_balance_exclude_with_their_reasons(market):
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=3000, caps=[{"window": "day", "max_spend_minor": 5000}])
    c = exchange.new_party(PartyKind.BUYER, "C")
    add_campaign(exchange.settings, c.id, fixed_price_minor=2000)
    fund(exchange.settings, c.id, 3000)
    outcomes = []
    for i in range(3):
        lead = solar_lead(phone=f"212-555-01{i:02d}", email=f"c{i}@example.com")
        outcomes.append(decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers)))
    assert [o["status"] for o in outcomes] == ["sold", "sold", "unsold"]
    assert [o["payout_minor"] for o in outcomes[:2]] == [2400, 1600]  # A, then B (A's budget is spent)
    assert set(outcomes[2]["reasons"]) == {"budget_reached:day", "insufficient_balance"}


def test_tiers_try_lower_tiers_only_when_higher_do_not_sell(market):
    exchange, supplier, a, b = market
    set_vertical_margin(exchange.settings, "solar", PERCENT_20, mode="tiers")
    add_campaign(exchange.settings, a.id, fixed_price_minor=1500, tier=1)
    add_campaign(exchange.settings, b.id, fixed_price_minor=4000, tier=2)
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["payout_minor"] == 1200  # tier 1 sells although tier 2 bids more
    [sale] = _sales(exchange.settings)
    assert sale.buyer_id == a.id


def test_equal_bids_go_to_the_least_recent_winner(market):
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=2000)
    add_campaign(exchange.settings, b.id, fixed_price_minor=2000)
    winners = []
    for i in range(4):
        lead = solar_lead(phone=f"212-555-01{i:02d}", email=f"t{i}@example.com")
        assert decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))["status"] == "sold"
        winners.append(_sales(exchange.settings)[-1].buyer_id)
    assert winners[0] != winners[1] and winners[0] == winners[2] and winners[1] == winners[3]


def test_supplier_minimum_and_margin_override(market):
    exchange, supplier, a, _ = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=2000)
    set_supplier_terms(exchange.settings, supplier.id, min_payout_minor=1700)
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["status"] == "unsold" and out["reasons"] == ["below_floor"]
    set_supplier_terms(exchange.settings, supplier.id, min_payout_minor=1700, margin={"type": "fixed", "amount_minor": 250})
    lead = solar_lead(phone="212-555-0177", email="m@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert out["status"] == "sold" and out["payout_minor"] == 1750


def test_ping_rate_limit_answers_429_with_retry_after(market):
    exchange, supplier, a, _ = market
    set_supplier_terms(exchange.settings, supplier.id, pings_per_second=1, ping_burst=2)
    codes = [exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert decode(r)["error"]["code"] == "rate_limited"


def test_traces_show_each_party_its_slice(market):
    exchange, supplier, a, b = market
    won = add_campaign(exchange.settings, a.id, fixed_price_minor=3000)
    lost = add_campaign(exchange.settings, b.id, fixed_price_minor=2000)
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    trace = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=exchange.operator.headers))
    by_stage = {t["stage"]: {e["campaign_id"]: e for e in t["entries"]} for t in trace["stages"]}
    assert by_stage["post"][won]["reason"] == "sold"
    assert by_stage["ping"][lost]["bid_minor"] == 2000
    assert by_stage["post"][lost]["reason"] == "not_better_than_winner"

    mine = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=b.headers))
    assert {e["campaign_id"] for t in mine["stages"] for e in t["entries"]} == {lost}
    assert mine["reasons"] == ["not_better_than_winner"]
    supplier_view = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=supplier.headers))
    assert supplier_view["stages"] == [] and "sold" in supplier_view["reasons"]
    stranger = exchange.new_party(PartyKind.SUPPLIER)
    assert exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=stranger.headers).status_code == 403


def test_a_campaign_the_index_left_out_is_explained_in_its_buyers_trace(market):
    """A state filter (or a paused campaign) keeps a campaign out of the auction's candidates
    altogether; its buyer asking why it did not get the lead still gets the reason."""
    exchange, supplier, a, b = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=3000)
    texas = add_campaign(exchange.settings, b.id, fixed_price_minor=5000,
                         filters=[{"kind": "states_in", "field": "state", "states": ["TX"]}])  # fmt: skip
    paused = add_campaign(exchange.settings, b.id, fixed_price_minor=5000, active=False)
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["status"] == "sold"
    r = exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=b.headers)
    assert r.status_code == 200, r.text
    mine = {e["campaign_id"]: e for t in r.json()["stages"] for e in t["entries"]}
    assert set(mine) == {texas, paused}
    assert mine[texas]["reason"] == "filtered:state" and mine[texas]["details"]["recomputed"] is True
    assert mine[paused]["reason"] == "campaign_paused"
    assert r.json()["reasons"] == ["campaign_paused", "filtered:state"]
    operator = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=exchange.operator.headers))
    ping = next(t for t in operator["stages"] if t["stage"] == "ping")
    assert {texas, paused} <= {e["campaign_id"] for e in ping["entries"]}


def test_explain_sells_nothing_and_lists_every_campaign(market):
    exchange, supplier, a, b = market
    c1 = add_campaign(exchange.settings, a.id, fixed_price_minor=3000)
    c2 = add_campaign(exchange.settings, b.id, filters=[{"kind": "states_in", "field": "state", "states": ["TX"]}])
    r = exchange.client.post("/v1/explain", json=ping_body(), headers=exchange.operator.headers)
    assert r.status_code == 200, r.text
    result = decode(r)
    reasons = {e["campaign_id"]: e["reason"] for e in result["entries"]}
    assert reasons == {c1: None, c2: "filtered:state"}
    assert result["payout_minor"] == 2400
    assert _sales(exchange.settings) == []
    assert run(exchange.settings, lambda c: c.execute(sa.select(sa.func.count()).select_from(leads))).scalar_one() == 0


@pytest.mark.parametrize(
    "last_minute, first_minute",
    [
        # An ordinary night in New York (UTC-5): local midnight is 05:00 UTC.
        (dt.datetime(2026, 1, 14, 4, 59, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 14, 5, 1, tzinfo=dt.timezone.utc)),
        # The night after the fall-back change (2026-11-01 is 25 hours long): midnight of
        # 2 November is 05:00 UTC, not 04:00.
        (dt.datetime(2026, 11, 2, 4, 59, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 2, 5, 1, tzinfo=dt.timezone.utc)),
        # Spring forward (2026-03-08 is 23 hours long): midnight of 9 March is 04:00 UTC.
        (dt.datetime(2026, 3, 9, 3, 59, tzinfo=dt.timezone.utc), dt.datetime(2026, 3, 9, 4, 1, tzinfo=dt.timezone.utc)),
    ],
)
def test_a_day_cap_resets_at_the_campaigns_local_midnight(market, last_minute, first_minute):
    exchange, supplier, a, _ = market
    add_campaign(exchange.settings, a.id, timezone="America/New_York", caps=[{"window": "day", "max_count": 1}])
    leads = iter(solar_lead(phone=f"212-555-01{i:02d}", email=f"d{i}@example.com") for i in range(10))

    def post():
        return decode(exchange.client.post("/v1/leads", json=next(leads), headers=supplier.headers))

    with freeze_time(last_minute - dt.timedelta(hours=2), real_asyncio=True):
        assert post()["status"] == "sold"
    with freeze_time(last_minute, real_asyncio=True):
        out = post()
        assert out["status"] == "unsold" and out["reasons"] == ["cap_reached:day"]
    with freeze_time(first_minute, real_asyncio=True):
        assert post()["status"] == "sold"


def test_a_schedule_opens_and_closes_on_the_campaigns_clock(market):
    exchange, supplier, a, _ = market
    weekdays_9_to_5 = {
        "timezone": "America/Los_Angeles",
        "days": {d: [{"start": 9 * 60, "end": 17 * 60}] for d in ("mon", "tue", "wed", "thu", "fri")},
    }
    add_campaign(exchange.settings, a.id, schedule=weekdays_9_to_5)
    leads = iter(solar_lead(phone=f"212-555-01{i:02d}", email=f"s{i}@example.com") for i in range(10))
    # Monday 2026-11-23: 08:59 in Los Angeles is 16:59 UTC.
    for moment, expected in [
        (dt.datetime(2026, 11, 23, 16, 59, tzinfo=dt.timezone.utc), "unsold"),
        (dt.datetime(2026, 11, 23, 17, 0, tzinfo=dt.timezone.utc), "sold"),
        (dt.datetime(2026, 11, 24, 0, 59, tzinfo=dt.timezone.utc), "sold"),  # 16:59 local
        (dt.datetime(2026, 11, 24, 1, 0, tzinfo=dt.timezone.utc), "unsold"),  # 17:00 local
        (dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.timezone.utc), "unsold"),  # Saturday
    ]:
        with freeze_time(moment, real_asyncio=True):
            out = decode(exchange.client.post("/v1/leads", json=next(leads), headers=supplier.headers))
            assert out["status"] == expected, (moment, out)
            if expected == "unsold":
                assert out["reasons"] == ["schedule_closed"]


def test_shared_leads_respect_each_campaigns_share_limit(market):
    exchange, supplier, a, b = market
    exclusive = add_campaign(exchange.settings, a.id, fixed_price_minor=4000)  # max_sells 1
    two_way = add_campaign(exchange.settings, b.id, fixed_price_minor=3000, max_sells=2)
    c = exchange.new_party(PartyKind.BUYER, "C")
    fund(exchange.settings, c.id, 100_000)
    three_way = add_campaign(exchange.settings, c.id, fixed_price_minor=2000, max_sells=3)
    r = exchange.client.post("/v1/pings", json=ping_body() | {"max_sells": 3}, headers=supplier.headers)
    offer = decode(r)
    assert offer["status"] == "accepted" and len(offer["bids"]) == 1 and offer["payout_minor"] == 1600
    trace = decode(exchange.client.get(f"/v1/pings/{offer['ping_id']}/trace", headers=exchange.operator.headers))
    reasons = {e["campaign_id"]: e["reason"] for e in trace["stages"][0]["entries"]}
    assert reasons == {exclusive: "exclusivity_conflict", two_way: "exclusivity_conflict", three_way: None}


def test_supplier_payout_models_fixed_and_revenue_share(market):
    exchange, supplier, a, _ = market
    add_campaign(exchange.settings, a.id, fixed_price_minor=3000)
    set_supplier_terms(exchange.settings, supplier.id, margin={"type": "fixed_payout", "amount_minor": 1500})
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert (out["status"], out["payout_minor"]) == ("sold", 1500)
    set_supplier_terms(exchange.settings, supplier.id, margin={"type": "revenue_share", "bps": 7500})
    lead = solar_lead(phone="212-555-0166", email="share@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert (out["status"], out["payout_minor"]) == ("sold", 2250)
    set_supplier_terms(exchange.settings, supplier.id, margin={"type": "fixed_payout", "amount_minor": 3500})
    lead = solar_lead(phone="212-555-0167", email="nope@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert out["status"] == "unsold" and out["reasons"] == ["below_floor"]  # 30.00 cannot pay 35.00
