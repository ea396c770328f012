"""Lead scoring through the API: the operator's config, the dry run, scores stored at intake and
campaigns filtering on them, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.store.tables import conversion_stats, leads, verticals
from tests.conftest import decode, run
from tests.integration.test_auction_api import ping_body
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, fund

CONFIG = {
    "base": 40,
    "rules": [
        {"field": "credit_rating", "op": "eq", "value": "excellent", "points": 35},
        {
            "field": "monthly_electric_bill",
            "op": "gte",
            "value": 20_000,
            "points": 10,
            "label": "big bill",
        },
        {
            "field": "property_type",
            "op": "in",
            "value": ["mobile_home", "commercial"],
            "points": -30,
        },
    ],
    "learned_weight": 20,
}


@pytest.fixture
def scored(exchange):
    exchange.seed_verticals()
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyer = exchange.new_party(PartyKind.BUYER, "A")
    fund(exchange.settings, buyer.id, 100_000)
    r = exchange.client.put(
        "/v1/verticals/solar/scoring", json=CONFIG, headers=exchange.operator.headers
    )
    assert r.status_code == 200, r.text
    return exchange, supplier, buyer


def stored_score(settings, lead_id):
    query = sa.select(leads.c.score, leads.c.priority).where(leads.c.id == uuid.UUID(lead_id))
    return tuple(run(settings, lambda conn: conn.execute(query)).one())


def add_stats(settings, source, trials, successes):
    async def work(conn):
        vertical_id = (
            await conn.execute(sa.select(verticals.c.id).where(verticals.c.slug == "solar"))
        ).scalar_one()
        await conn.execute(
            conversion_stats.insert().values(
                subject=f"source:{vertical_id}:{source or ''}", segment="*", trials=trials,
                successes=successes, value_minor=0, updated_at=dt.datetime.now(dt.timezone.utc),
            )
        )  # fmt: skip

    run(settings, work)


def test_config_is_checked_stored_and_read_back(exchange):
    exchange.seed_verticals()
    client, admin = exchange.client, exchange.operator.headers
    assert client.get("/v1/verticals/solar/scoring", headers=admin).status_code == 404
    bad = {
        "rules": [
            {"field": "nope", "op": "eq", "value": 1, "points": 5},
            {"field": "phone", "op": "present", "points": 5},
            {"field": "credit_rating", "op": "eq", "value": "superb", "points": 5},
            {"field": "monthly_electric_bill", "op": "gte", "value": "200", "points": 5},
        ],
        "bands": [{"min_score": 50, "priority": "high"}],
    }
    r = client.put("/v1/verticals/solar/scoring", json=bad, headers=admin)
    assert r.status_code == 422, r.text
    assert [f["path"] for f in decode(r)["error"]["fields"]] == [
        "rules[0].field", "rules[1].field", "rules[2].value", "rules[3].value", "bands",
    ]  # fmt: skip
    assert (
        client.get("/v1/verticals/solar/scoring", headers=admin).status_code == 404
    )  # nothing stored
    r = client.put("/v1/verticals/solar/scoring", json={"base": 120}, headers=admin)
    assert r.status_code in (400, 422)

    r = client.put("/v1/verticals/solar/scoring", json=CONFIG, headers=admin)
    assert r.status_code == 200, r.text
    got = decode(client.get("/v1/verticals/solar/scoring", headers=admin))
    assert (
        got["base"] == 40
        and len(got["rules"]) == 3
        and got["bands"][0] == {"min_score": 80, "priority": "high"}
    )
    version = decode(client.get("/v1/verticals/solar", headers=admin))["version"]
    assert version == 1  # scoring is not a new field definition

    supplier = exchange.new_party(PartyKind.SUPPLIER)
    assert (
        client.put("/v1/verticals/solar/scoring", json=CONFIG, headers=supplier.headers).status_code
        == 403
    )
    assert client.get("/v1/verticals/solar/scoring", headers=supplier.headers).status_code == 403
    assert client.delete("/v1/verticals/solar/scoring", headers=admin).status_code == 204
    assert client.get("/v1/verticals/solar/scoring", headers=admin).status_code == 404


def test_explain_scores_without_storing(scored):
    exchange, _, _ = scored
    add_stats(exchange.settings, "google", 40, 12)
    add_stats(exchange.settings, "bing", 160, 8)
    body = {"fields": {**solar_lead()["fields"], "credit_rating": "Excellent"}, "source": "google"}
    r = exchange.client.post(
        "/v1/verticals/solar/scoring/explain", json=body, headers=exchange.operator.headers
    )
    assert r.status_code == 200, r.text
    out = decode(r)
    # vertical 20/200 = 10%; google (12 + 20*0.1)/(40 + 20) = 23%: (0.233-0.1)/0.9*20 = +3
    assert [(p["label"], p["points"]) for p in out["parts"]] == [
        ("base", 40), ('credit_rating eq "excellent"', 35), ("big bill", 10),
        ("source history: 23% (40 outcomes) vs vertical 10%: +3", 3),
    ]  # fmt: skip
    assert (out["score"], out["priority"]) == (88, "high")
    trial = {**body, "source": "bing", "config": {**CONFIG, "base": 0}}
    out = decode(
        exchange.client.post(
            "/v1/verticals/solar/scoring/explain", json=trial, headers=exchange.operator.headers
        )
    )
    # bing: (8 + 2)/(160 + 20) = 5.6% vs 10%: -0.044/0.9*20 = -1
    assert out["score"] == 45 - 1 and out["priority"] == "low"
    r = exchange.client.post(
        "/v1/verticals/solar/scoring/explain",
        json={"fields": {"zip": "x"}},
        headers=exchange.operator.headers,
    )
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "fields.zip"
    assert (
        run(
            exchange.settings, lambda c: c.execute(sa.select(sa.func.count()).select_from(leads))
        ).scalar_one()
        == 0
    )


def test_score_range_campaign_takes_high_scores_and_filters_low_ones(scored):
    exchange, supplier, buyer = scored
    r = exchange.client.post(
        "/v1/campaigns",
        json={"name": "hot leads", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": 2500,
              "filters": [{"kind": "score_range", "minimum": 70}]},
        headers=buyer.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    hot = solar_lead(credit_rating="excellent")  # 40 + 35 + 10 (bill $1,234.50) = 85
    r = exchange.client.post("/v1/leads", json=hot, headers=supplier.headers)
    assert r.status_code == 201, r.text
    sold = decode(r)
    assert sold["status"] == "sold"
    assert stored_score(exchange.settings, sold["lead_id"]) == (85, "high")

    cold = solar_lead(credit_rating="poor", phone="(415) 555-0000", email="cold@example.com")  # 50
    out = decode(exchange.client.post("/v1/leads", json=cold, headers=supplier.headers))
    assert out["status"] == "unsold" and out["reasons"] == ["filtered:score"]
    assert stored_score(exchange.settings, out["lead_id"]) == (50, "normal")

    admin = exchange.operator.headers
    trace = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=admin))
    assert (trace["score"], trace["priority"]) == (50, "normal")
    [entry] = [e for stage in trace["stages"] for e in stage["entries"]]
    assert entry["reason"] == "filtered:score" and entry["details"] == {
        "filter": "score_range",
        "value": 50,
    }
    [ping_stage] = [s for s in trace["stages"] if s["stage"] == "ping"]
    assert ping_stage["score"]["score"] == 50 and ping_stage["score"]["parts"][0] == {
        "label": "base",
        "points": 40,
    }
    lead = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}", headers=admin))
    assert (lead["score"], lead["priority"]) == (50, "normal")
    # How the exchange rates a lead is not the supplier's (nor a buyer's) to see.
    mine = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}", headers=supplier.headers))
    assert "score" not in mine and "priority" not in mine
    theirs = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=buyer.headers))
    assert theirs["score"] is None and all("score" not in s for s in theirs["stages"])


def test_priority_filter_on_ping_then_post_and_the_score_is_stored(scored):
    exchange, supplier, buyer = scored
    add_campaign(exchange.settings, buyer.id, fixed_price_minor=2500,
                 filters=[{"kind": "priority_in", "values": ["high"]}])  # fmt: skip
    low = decode(
        exchange.client.post(
            "/v1/pings", json=ping_body(property_type="commercial"), headers=supplier.headers
        )
    )
    assert low["status"] == "rejected" and low["reasons"] == ["filtered:priority"]
    r = exchange.client.post(
        "/v1/pings", json=ping_body(credit_rating="excellent"), headers=supplier.headers
    )
    offer = decode(r)
    assert offer["status"] == "accepted", offer
    lead = solar_lead(credit_rating="excellent")
    r = exchange.client.post("/v1/posts", json={"ping_id": offer["ping_id"], "fields": lead["fields"], "consent": lead["consent"]},
                             headers=supplier.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    posted = decode(r)
    assert posted["status"] == "sold"
    assert stored_score(exchange.settings, posted["lead_id"]) == (85, "high")
    dry = ping_body(credit_rating="excellent")
    explained = decode(exchange.client.post("/v1/explain", json=dry, headers=exchange.operator.headers))
    assert (explained["score"]["score"], explained["entries"][0]["reason"]) == (85, None)
    told = decode(exchange.client.post("/v1/explain", json=dry, headers=supplier.headers))
    assert told.get("score") is None


def test_a_vertical_without_scoring_scores_nothing(exchange):
    exchange.seed_verticals()
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyer = exchange.new_party(PartyKind.BUYER)
    fund(exchange.settings, buyer.id, 100_000)
    add_campaign(exchange.settings, buyer.id, filters=[{"kind": "score_range", "minimum": 0}])
    out = decode(exchange.client.post("/v1/leads", json=solar_lead(), headers=supplier.headers))
    assert out["status"] == "unsold" and out["reasons"] == ["filtered:score"]  # no score to pass
    assert stored_score(exchange.settings, out["lead_id"]) == (None, None)


def test_source_history_is_read_once_per_vertical_and_ttl(exchange):
    """The hot path: many leads, many sources, one read of the counts per vertical and TTL; a
    stale copy is served while one background reload runs. Another process's config change
    reaches the market snapshot (through the vertical's updated_at)."""
    import asyncio

    from exchange.auction.market import Market
    from exchange.scoring import Counts, SourceHistory
    from exchange.store.db import Database

    exchange.seed_verticals()
    add_stats(exchange.settings, "google", 40, 12)
    add_stats(exchange.settings, None, 10, 1)
    vertical_id = run(
        exchange.settings,
        lambda c: c.execute(sa.select(verticals.c.id).where(verticals.c.slug == "solar")),
    ).scalar_one()
    with asyncio.Runner() as runner:
        db = Database(exchange.settings)
        history = SourceHistory(db, ttl_s=0.2)
        market = Market(db, 200)
        try:
            for source in ["google", None, "bing", "google"] * 5:
                runner.run(history.counts(vertical_id, source))
            assert history.loads == 1
            assert runner.run(history.counts(vertical_id, "google")) == (
                Counts(40, 12),
                Counts(50, 13),
            )
            assert runner.run(history.counts(vertical_id, None))[0] == Counts(10, 1)
            assert runner.run(history.counts(vertical_id, "bing"))[0] == Counts(0, 0)
            add_stats(exchange.settings, "bing", 50, 0)
            runner.run(asyncio.sleep(0.25))
            assert runner.run(history.counts(vertical_id, "bing"))[0] == Counts(
                0, 0
            )  # stale, reloading
            runner.run(asyncio.sleep(0.1))
            assert runner.run(history.counts(vertical_id, "bing"))[0] == Counts(50, 0)
            assert history.loads == 2

            assert runner.run(market.get("solar")).scoring is None
            r = exchange.client.put(
                "/v1/verticals/solar/scoring", json=CONFIG, headers=exchange.operator.headers
            )
            assert r.status_code == 200
            for _ in range(40):
                if runner.run(market.get("solar")).scoring is not None:
                    break
                runner.run(asyncio.sleep(0.05))
            assert runner.run(market.get("solar")).scoring.base == 40
        finally:
            runner.run(history.close())
            runner.run(market.close())
            runner.run(db.dispose())
