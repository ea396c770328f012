"""Live bids over real sockets: simulated buyers that are fast, slow, failing or picky."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from exchange.auction.service import signing_secret
from exchange.auth.parties import PartyKind
from exchange.simulator import Behaviour, BuyerServer, endpoints
from exchange.store.tables import sales
from tests.conftest import decode, run
from tests.integration.test_auction_api import PERCENT_20, ping_body
from tests.integration.test_intake_api import solar_lead
from tests.market import add_campaign, fund, set_vertical_margin

DEADLINE_SLACK_MS = 400  # scheduling, the database and the test client, on a busy 2-core box


@pytest.fixture
def live(exchange):
    exchange.seed_verticals()
    set_vertical_margin(exchange.settings, "solar", PERCENT_20)
    supplier = exchange.new_party(PartyKind.SUPPLIER)
    buyers = {}
    for name in ("fast", "slow", "broken", "picky", "cheap"):
        buyers[name] = exchange.new_party(PartyKind.BUYER, name)
        fund(exchange.settings, buyers[name].id, 1_000_000)
    secret = lambda name: signing_secret(exchange.settings, str(buyers[name].id))  # noqa: E731
    behaviours = {
        "fast": Behaviour(bid_min_minor=3000, bid_max_minor=3000, latency_ms=5, secret=secret("fast")),
        "slow": Behaviour(bid_min_minor=9000, bid_max_minor=9000, latency_ms=1500, secret=secret("slow")),
        "broken": Behaviour(error_rate=1.0, latency_ms=5, secret=secret("broken")),
        "picky": Behaviour(bid_min_minor=5000, bid_max_minor=5000, latency_ms=5, post_reject_rate=1.0, secret=secret("picky")),
        "cheap": Behaviour(bid_min_minor=1000, bid_max_minor=1000, latency_ms=5, secret=secret("cheap")),
    }
    with BuyerServer(behaviours, seed=1) as server:
        yield exchange, supplier, buyers, server


def _campaign(exchange, buyers, server, name, **kw):
    return add_campaign(
        exchange.settings, buyers[name].id, price_mode="live", fixed_price_minor=None,
        endpoints=endpoints(server.base_url, name, ping_timeout_ms=kw.pop("ping_timeout_ms", 300)), **kw,
    )  # fmt: skip


def test_slow_buyer_never_wins_and_the_ping_returns_within_the_deadline(live):
    exchange, supplier, buyers, server = live
    _campaign(exchange, buyers, server, "fast")
    slow = _campaign(exchange, buyers, server, "slow")  # bids 3x more, but too late
    broken = _campaign(exchange, buyers, server, "broken")
    started = time.monotonic()
    r = exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert r.status_code == 200, r.text
    offer = decode(r)
    assert offer["payout_minor"] == 2400  # the fast buyer's 30.00 less 20%
    assert elapsed_ms < 300 + DEADLINE_SLACK_MS  # the slow buyer's own timeout, not its 1.5 s
    trace = decode(exchange.client.get(f"/v1/pings/{offer['ping_id']}/trace", headers=exchange.operator.headers))
    entries = {e["campaign_id"]: e for e in trace["stages"][0]["entries"]}
    assert entries[slow]["reason"] == "ping_timeout"
    assert entries[broken]["reason"] == "ping_error"
    assert all(r.signature_ok for r in server.received)
    pinged = [r for r in server.received if r.kind == "ping"]
    assert {"first_name", "phone", "email"}.isdisjoint(pinged[0].body.get("fields", {}))


def test_the_auction_deadline_bounds_every_buyer(live):
    exchange, supplier, buyers, server = live
    _campaign(exchange, buyers, server, "slow", ping_timeout_ms=5000)  # longer than the deadline
    _campaign(exchange, buyers, server, "cheap")
    deadline = exchange.settings.auction_deadline_ms
    started = time.monotonic()
    offer = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
    assert (time.monotonic() - started) * 1000 < deadline + DEADLINE_SLACK_MS
    assert offer["payout_minor"] == 800


def test_a_rejected_post_falls_back_only_while_the_promise_is_kept(live):
    exchange, supplier, buyers, server = live
    _campaign(exchange, buyers, server, "picky")  # bids 50.00, rejects every post
    _campaign(exchange, buyers, server, "fast")  # 30.00: pays 24.00, less than promised
    offer = decode(exchange.client.post("/v1/pings", json=ping_body(), headers=supplier.headers))
    assert offer["payout_minor"] == 4000
    post = {"ping_id": offer["ping_id"], "fields": solar_lead()["fields"]}
    out = decode(exchange.client.post("/v1/posts", json=post, headers=supplier.headers))
    assert out["status"] == "unsold"  # selling to "fast" would pay the supplier less than 40.00
    statuses = run(exchange.settings, lambda c: c.execute(sa.select(sales.c.status))).scalars().all()
    assert statuses == ["rejected"]  # tried, refused, never charged
    posted = [r.buyer for r in server.received if r.kind == "post"]
    assert posted == ["picky"]
    assert server.received[-1].body["fields"]["phone"] == "+14155552671"  # PII goes on the post

    # When the next bid still covers the promise, the walk goes on to it.
    second = exchange.new_party(PartyKind.BUYER, "second")
    fund(exchange.settings, second.id, 10**6)
    add_campaign(exchange.settings, second.id, fixed_price_minor=5000)  # pays 40.00 too
    lead = solar_lead(phone="212-555-0123", email="next@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert out["status"] == "sold" and out["payout_minor"] == 4000
    trace = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=exchange.operator.headers))
    post_stage = next(t for t in trace["stages"] if t["stage"] == "post")
    assert sorted(e["reason"] for e in post_stage["entries"]) == ["not_better_than_winner", "post_rejected", "sold"]


def test_a_walk_out_of_time_posts_no_more_and_gives_back_what_it_held(live, monkeypatch):
    """A walk stops starting posts before the sweeper could take its lead for dead (see
    walking.walk_budget_s): a slow first buyer used up the time, so the next bid is not tried."""
    from exchange.auction import walking
    from exchange.store.tables import cap_counters

    exchange, supplier, buyers, server = live
    _campaign(exchange, buyers, server, "picky")  # bids 50.00, rejects every post
    second = exchange.new_party(PartyKind.BUYER, "second")
    fund(exchange.settings, second.id, 10**6)
    add_campaign(exchange.settings, second.id, fixed_price_minor=5000,
                 caps=[{"window": "day", "max_count": 5}])  # fmt: skip
    ticks = iter([0.0, 0.0])  # the deadline, then the first post's check: in time

    def clock() -> float:
        return next(ticks, 10.0**9)  # every later look: far past the budget

    monkeypatch.setattr(walking, "_clock", clock)
    lead = solar_lead(phone="212-555-0199", email="late@example.com")
    out = decode(exchange.client.post("/v1/leads", json=lead, headers=supplier.headers))
    assert out["status"] == "unsold"
    assert [r.buyer for r in server.received if r.kind == "post"] == ["picky"]
    trace = decode(exchange.client.get(f"/v1/leads/{out['lead_id']}/trace", headers=exchange.operator.headers))
    post_stage = next(t for t in trace["stages"] if t["stage"] == "post")
    assert sorted(e["reason"] for e in post_stage["entries"]) == ["not_better_than_winner", "post_rejected"]
    # What the ping held for the bid never tried went back: no count left on the capped campaign.
    used = run(exchange.settings, lambda c: c.execute(sa.select(sa.func.coalesce(sa.func.sum(cap_counters.c.count), 0))))
    assert used.scalar_one() == 0
    assert walking.walk_budget_s(300) == 240
