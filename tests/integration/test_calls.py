"""Call leads end to end through the HTTP API, on SQLite and PostgreSQL: a call ping answered
with where the call rings and until when; a connect inside and outside that expiry; a call
billed only from its campaign's minimum duration on; calls at once capped by the campaign's
concurrent cap and by its schedule; a team's calls ringing its agents by its strategy; the
sweep of calls that never connected or whose end never came; and many call pings at once on
PostgreSQL against one line."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.auth.parties import PartyKind, Principal
from exchange.calls import service as calls_service
from exchange.calls.messages import AnswerIn, CallPingIn, EndIn
from exchange.errors import ApiError
from exchange.store.db import Database
from exchange.store.tables import calls, cap_counters, lead_owners, lead_pii, leads, sales
from tests.conftest import decode, run
from tests.integration.test_auction_api import PERCENT_20
from tests.integration.test_auction_concurrency import _in_threads
from tests.market import balance, fund, set_vertical_margin

PRICE_MINOR = 4_000
MIN_DURATION_S = 90
LINE = "+14155550100"
CALL_FIELDS = {"zip": "94103", "state": "CA", "homeowner": "yes", "property_type": "single_family",
               "monthly_electric_bill": "150"}  # fmt: skip


class Market_:
    """A solar market with a supplier, a funded buyer and helpers for its calls."""

    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.client = exchange.client
        self.op = exchange.operator.headers
        exchange.seed_verticals()
        set_vertical_margin(exchange.settings, "solar", PERCENT_20)
        self.supplier = exchange.new_party(PartyKind.SUPPLIER)
        self.buyer = exchange.new_party(PartyKind.BUYER)
        fund(exchange.settings, self.buyer.id, 100_000)
        self.callers = 0

    def call_campaign(self, **overrides: Any) -> dict:
        body = {
            "name": "calls CA", "vertical": "solar", "price_mode": "fixed",
            "fixed_price_minor": PRICE_MINOR, "timezone": "America/Los_Angeles",
            "call": {"destination": LINE, "min_duration_s": MIN_DURATION_S},
            **overrides,
        }  # fmt: skip
        r = self.client.post("/v1/campaigns", json=body, headers=self.buyer.headers)
        assert r.status_code == 201, r.text
        return decode(r)

    def ping(self, **extra: Any) -> dict:
        r = self.client.post("/v1/calls", json={"vertical": "solar", "fields": CALL_FIELDS, **extra},
                             headers=self.supplier.headers)  # fmt: skip
        assert r.status_code == 200, r.text
        return decode(r)

    def connect(self, call_id: str, expect: int = 200, **body: Any) -> dict:
        self.callers += 1
        body.setdefault("caller", f"+1415555{self.callers:04d}")
        r = self.client.post(f"/v1/calls/{call_id}/connect", json=body, headers=self.supplier.headers)
        assert r.status_code == expect, r.text
        return decode(r)

    def end(self, call_id: str, duration_s: int, expect: int = 200, **body: Any) -> dict:
        r = self.client.post(f"/v1/calls/{call_id}/end", json={"duration_s": duration_s, **body},
                             headers=self.supplier.headers)  # fmt: skip
        assert r.status_code == expect, r.text
        return decode(r)

    def db(self, work) -> Any:
        return run(self.exchange.settings, work)

    def rows(self, table, *where) -> list:
        async def work(conn):
            return (await conn.execute(sa.select(table).where(*where))).all()

        return self.db(work)

    def line_count(self, campaign_id: str) -> int:
        rows = self.rows(cap_counters, cap_counters.c.campaign_id == uuid.UUID(campaign_id),
                         cap_counters.c.window_key == "concurrent")  # fmt: skip
        return rows[0].count if rows else 0

    def sweep(self, now: dt.datetime | None = None) -> int:
        async def main():
            db = Database(self.exchange.settings)
            try:
                return await calls_service.sweep(db, self.exchange.settings, now)
            finally:
                await db.dispose()

        return asyncio.run(main())

    def age(self, call_id: str, **columns: dt.datetime) -> None:
        """Move a call's instants into the past: what the clock would have done."""

        async def work(conn):
            await conn.execute(calls.update().where(calls.c.id == uuid.UUID(call_id)).values(**columns))

        self.db(work)


@pytest.fixture
def market(exchange) -> Market_:
    return Market_(exchange)


def test_a_call_connected_in_time_and_long_enough_is_sold_and_billed_once(market):
    campaign = market.call_campaign(caps=[{"window": "concurrent", "max_count": 2},
                                          {"window": "day", "max_count": 10}])  # fmt: skip
    offer = market.ping(source="tv-spot")
    assert offer["status"] == "accepted"
    assert offer["destinations"] == [{"address": LINE}] and offer["ring"] == "single"
    assert offer["min_duration_s"] == MIN_DURATION_S
    assert offer["payout_minor"] == PRICE_MINOR * 8 // 10  # the vertical's 20 % margin
    assert dt.datetime.fromisoformat(offer["expires_at"]) > dt.datetime.now(dt.timezone.utc)
    assert market.line_count(campaign["id"]) == 1  # the line is held from the bid on

    call = market.connect(offer["call_id"], caller="(415) 555-0199", fields={"first_name": "Ana"})
    assert call["status"] == "connected" and call["lead_id"]
    lead = market.rows(leads, leads.c.id == uuid.UUID(call["lead_id"]))[0]
    assert (lead.channel, lead.status, lead.source) == ("call", "calling", "tv-spot")
    pii = market.rows(lead_pii, lead_pii.c.lead_id == lead.id)[0].pii
    assert pii["phone"] == "+14155550199" and pii["first_name"] == "Ana"
    before = balance(market.exchange.settings, market.buyer.id)

    ended = market.end(offer["call_id"], MIN_DURATION_S)  # exactly the minimum counts
    assert ended["status"] == "completed" and ended["sale_id"] and "reason" not in ended
    sale = market.rows(sales, sales.c.lead_id == lead.id)
    assert [(s.status, s.price_minor) for s in sale] == [("delivered", PRICE_MINOR)]
    assert market.rows(leads, leads.c.id == lead.id)[0].status == "sold"
    assert balance(market.exchange.settings, market.buyer.id) == before - PRICE_MINOR
    assert market.line_count(campaign["id"]) == 0  # the line is free again
    day = market.rows(cap_counters, cap_counters.c.campaign_id == uuid.UUID(campaign["id"]),
                      cap_counters.c.window_key.like("day:%"))  # fmt: skip
    assert [d.count for d in day] == [1]  # the sale keeps its place in the day's cap

    again = market.end(offer["call_id"], MIN_DURATION_S)  # the telephony retried its report
    assert again["sale_id"] == ended["sale_id"]
    assert balance(market.exchange.settings, market.buyer.id) == before - PRICE_MINOR
    market.end(offer["call_id"], MIN_DURATION_S + 5, expect=409)  # another duration: refused
    r = market.client.get("/v1/ledger/trial-balance", headers=market.op)
    assert r.status_code == 200 and decode(r)["balanced"], r.text

    trace = decode(market.client.get(f"/v1/pings/{offer['call_id']}/trace", headers=market.op))
    assert trace["lead_id"] == call["lead_id"] and [t["stage"] for t in trace["stages"]] == ["ping", "call"]
    entries = trace["stages"][0]["entries"]
    assert [(e["campaign_id"], e.get("reason")) for e in entries] == [(campaign["id"], None)]
    lead_trace = decode(market.client.get(f"/v1/leads/{call['lead_id']}/trace", headers=market.op))
    assert [t["stage"] for t in lead_trace["stages"]] == ["ping", "call"]
    (end_entry,) = lead_trace["stages"][1]["entries"]
    assert (end_entry["campaign_id"], end_entry["reason"], end_entry["details"]["duration_s"]) == (
        campaign["id"], "sold", MIN_DURATION_S,
    )  # fmt: skip
    seen = decode(market.client.get(f"/v1/calls/{offer['call_id']}", headers=market.buyer.headers))
    assert seen["price_minor"] == PRICE_MINOR and "payout_minor" not in seen  # not the buyer's
    mine = decode(market.client.get(f"/v1/calls/{offer['call_id']}", headers=market.supplier.headers))
    assert mine["payout_minor"] == offer["payout_minor"] and "price_minor" not in mine


def test_a_call_below_the_minimum_duration_is_not_billed(market):
    campaign = market.call_campaign(caps=[{"window": "day", "max_count": 10},
                                          {"window": "concurrent", "max_count": 1}])  # fmt: skip
    offer = market.ping()
    call = market.connect(offer["call_id"])
    before = balance(market.exchange.settings, market.buyer.id)
    ended = market.end(offer["call_id"], MIN_DURATION_S - 1)
    assert (ended["status"], ended["reason"]) == ("short", "call_too_short")
    trace = decode(market.client.get(f"/v1/leads/{call['lead_id']}/trace", headers=market.supplier.headers))
    assert trace["reasons"] == ["call_too_short"]  # what the supplier is told
    assert "sale_id" not in ended
    assert market.rows(sales, sales.c.lead_id == uuid.UUID(call["lead_id"])) == []
    assert balance(market.exchange.settings, market.buyer.id) == before
    assert market.rows(leads, leads.c.id == uuid.UUID(call["lead_id"]))[0].status == "unsold"
    counters = market.rows(cap_counters, cap_counters.c.campaign_id == uuid.UUID(campaign["id"]))
    assert all(c.count == 0 for c in counters)  # nothing it held stays counted

    unanswered = market.ping()
    market.connect(unanswered["call_id"])
    assert market.end(unanswered["call_id"], 0)["status"] == "missed"  # nobody picked up


def test_a_connect_after_the_expiry_is_refused_and_stores_nothing(market):
    campaign = market.call_campaign(caps=[{"window": "concurrent", "max_count": 1}])
    offer = market.ping()
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    market.age(offer["call_id"], expires_at=past)
    r = market.client.post(f"/v1/calls/{offer['call_id']}/connect", json={"caller": "+14155550123"},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 409 and decode(r)["error"]["code"] == "call_expired", r.text
    assert market.rows(leads) == [] and market.rows(lead_pii) == []
    assert market.line_count(campaign["id"]) == 1  # until the sweep ends it...
    assert market.sweep() == 1
    assert market.rows(calls)[0].status == "expired"
    assert market.line_count(campaign["id"]) == 0  # ...and gives its line back
    assert market.sweep() == 0  # once


def test_connect_inside_the_expiry_is_idempotent_and_bad_input_stores_nothing(market):
    market.call_campaign()
    offer = market.ping()
    r = market.client.post(f"/v1/calls/{offer['call_id']}/connect", json={"caller": "not a number"},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "caller", r.text
    r = market.client.post(f"/v1/calls/{offer['call_id']}/connect",
                           json={"caller": "+14155550123", "fields": {"state": "TX"}},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 422 and decode(r)["error"]["code"] == "contradicts_ping", r.text
    assert market.rows(leads) == []
    first = market.connect(offer["call_id"], caller="+14155550123")
    second = market.connect(offer["call_id"], caller="+14155550123")  # a retried report
    assert second["lead_id"] == first["lead_id"] and len(market.rows(leads)) == 1
    other = market.exchange.new_party(PartyKind.SUPPLIER)
    r = market.client.post(f"/v1/calls/{offer['call_id']}/end", json={"duration_s": 5}, headers=other.headers)
    assert r.status_code == 403, r.text


def test_calls_at_once_are_capped_by_the_campaign_and_by_its_schedule(market):
    campaign = market.call_campaign(caps=[{"window": "concurrent", "max_count": 1}])
    first = market.ping()
    second = market.ping()
    assert first["status"] == "accepted"
    assert second["status"] == "rejected" and second["reasons"] == ["cap_reached:concurrent"]
    market.connect(first["call_id"])
    assert market.ping()["status"] == "rejected"  # connected, the call still holds its line
    market.end(first["call_id"], 200)
    assert market.ping()["status"] == "accepted"  # ended: the line is free
    assert market.line_count(campaign["id"]) == 1

    # The schedule's lines for the interval open now win over the cap (two lines all week).
    every_day = {day: [{"start": 0, "end": 1440, "max_concurrent": 2}]
                 for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}  # fmt: skip
    body = {**{k: v for k, v in campaign.items() if k in ("name", "vertical", "price_mode", "fixed_price_minor", "timezone", "call")},
            "caps": [{"window": "concurrent", "max_count": 1}],
            "schedule": {"timezone": "America/Los_Angeles", "days": every_day}}  # fmt: skip
    r = market.client.put(f"/v1/campaigns/{campaign['id']}", json=body, headers=market.buyer.headers)
    assert r.status_code == 200, r.text
    assert market.ping()["status"] == "accepted"  # a second line now
    assert market.ping()["reasons"] == ["cap_reached:concurrent"]


def test_lead_pings_never_meet_call_campaigns_nor_calls_lead_campaigns(market):
    market.call_campaign()
    body = {"vertical": "solar", "fields": CALL_FIELDS}
    r = market.client.post("/v1/pings", json=body, headers=market.supplier.headers)
    assert decode(r)["status"] == "rejected", r.text
    market.call_campaign  # noqa: B018 - a lead campaign next
    r = market.client.post("/v1/campaigns", headers=market.buyer.headers, json={
        "name": "leads", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": 9_000})  # fmt: skip
    assert r.status_code == 201, r.text
    offer = market.ping()
    assert offer["payout_minor"] == PRICE_MINOR * 8 // 10  # the call campaign's, not 9,000's


def test_call_campaigns_are_validated_with_paths(market):
    cases = [
        ({"call": {"destination": "0800 CALL ME"}}, "call.destination"),
        ({"call": {"min_duration_s": 30}}, "call.destination"),  # a buyer names its line
        ({"call": {"destination": LINE}, "max_sells": 2}, "max_sells"),
        ({"call": None, "caps": [{"window": "concurrent", "max_count": 1}]}, "caps[0].window"),
        ({"caps": [{"window": "concurrent", "max_spend_minor": 5}]}, "caps[0].max_spend_minor"),
    ]
    for overrides, path in cases:
        body = {"name": "c", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": 100,
                "call": {"destination": LINE}, **overrides}  # fmt: skip
        if body["call"] is None:
            del body["call"]
        r = market.client.post("/v1/campaigns", json=body, headers=market.buyer.headers)
        assert r.status_code == 422, r.text
        assert path in [f["path"] for f in decode(r)["error"]["fields"]], (path, r.text)
    assert decode(market.client.get("/v1/campaigns", headers=market.buyer.headers))["items"] == []
    made = market.call_campaign()
    body = {"name": "c", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": 100}
    r = market.client.put(f"/v1/campaigns/{made['id']}", json=body, headers=market.buyer.headers)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "call", r.text


def test_a_call_whose_end_never_comes_is_closed_unbilled_by_the_sweep(market):
    campaign = market.call_campaign(caps=[{"window": "concurrent", "max_count": 1}])
    offer = market.ping()
    call = market.connect(offer["call_id"])
    assert market.sweep() == 0  # in progress: left alone
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=market.exchange.settings.call_max_s + 1)
    market.age(offer["call_id"], connected_at=long_ago)
    assert market.sweep() == 1
    row = market.rows(calls)[0]
    assert (row.status, row.reason, row.sale_id) == ("unreported", "call_unreported", None)
    assert market.rows(leads, leads.c.id == uuid.UUID(call["lead_id"]))[0].status == "unsold"
    assert market.line_count(campaign["id"]) == 0
    assert market.end(offer["call_id"], 300)["status"] == "unreported"  # too late to bill


# --- a team's calls ------------------------------------------------------------------------------


class CallTeam:
    def __init__(self, market: Market_, strategy: str) -> None:
        self.market = market
        client, op = market.client, market.op
        self.team = market.exchange.new_party(PartyKind.TEAM)
        r = client.put("/v1/team-routes", json={"vertical": "solar", "team_id": str(self.team.id)}, headers=op)
        assert r.status_code == 200, r.text
        r = client.put(f"/v1/teams/{self.team.id}/config", json={"strategy": strategy, "offer_timeout_s": 30}, headers=op)
        assert r.status_code == 200, r.text
        self.agents = []
        for i in range(3):
            agent = market.exchange.new_party(PartyKind.AGENT, team_id=self.team.id)
            profile = {"heartbeat_ttl_s": None}
            if i < 2:  # the third takes no calls
                profile["call_destination"] = f"sip:agent{i}@pbx.example.com"
            r = client.put(f"/v1/agents/{agent.id}/profile", json=profile, headers=op)
            assert r.status_code == 200, r.text
            self.agents.append(agent)

    def owner(self, lead_id: str) -> Any:
        rows = self.market.rows(lead_owners, lead_owners.c.lead_id == uuid.UUID(lead_id))
        return rows[0] if rows else None


def test_a_teams_calls_ring_one_agent_in_turn_and_the_answer_owns_the_lead(market):
    team = CallTeam(market, "round_robin")  # nobody buys calls: the team's route takes them
    rung = []
    for _ in range(2):
        offer = market.ping()
        assert offer["status"] == "accepted" and offer["ring"] == "single", offer
        assert offer["payout_minor"] == 0
        destination = offer["destinations"][0]
        rung.append(destination["agent_id"])
        call = market.connect(offer["call_id"])
        ended = market.end(offer["call_id"], 120)
        assert ended["status"] == "completed" and "sale_id" not in ended
        owner = team.owner(call["lead_id"])
        assert (owner.status, str(owner.agent_id)) == ("owned", destination["agent_id"])
        assert market.rows(leads, leads.c.id == uuid.UUID(call["lead_id"]))[0].status == "unsold"
    assert sorted(rung) == sorted(str(a.id) for a in team.agents[:2])  # in turn, callers only


def test_a_parallel_teams_call_rings_everyone_and_the_first_answer_wins(market):
    team = CallTeam(market, "parallel")
    offer = market.ping()
    assert offer["ring"] == "simultaneous" and len(offer["destinations"]) == 2
    first, second = offer["destinations"]
    call = market.connect(offer["call_id"])
    r = market.client.post(f"/v1/calls/{offer['call_id']}/answer", json={"address": second["address"]},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    r = market.client.post(f"/v1/calls/{offer['call_id']}/answer", json={"address": first["address"]},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 409 and decode(r)["error"]["details"]["agent_id"] == second["agent_id"], r.text
    assert str(team.owner(call["lead_id"]).agent_id) == second["agent_id"]
    r = market.client.post(f"/v1/calls/{offer['call_id']}/end", json={"duration_s": 30},
                           headers=market.supplier.headers)  # fmt: skip
    assert decode(r)["status"] == "completed", r.text  # a team's call has no price to miss


def test_a_sequential_teams_call_rings_in_order_with_a_ring_time_each(market):
    CallTeam(market, "sequential")
    offer = market.ping()
    assert offer["ring"] == "sequential" and offer["ring_timeout_s"] == 30
    assert len(offer["destinations"]) == 2
    created = dt.datetime.now(dt.timezone.utc)
    window = dt.datetime.fromisoformat(offer["expires_at"]) - created
    ttl = dt.timedelta(seconds=market.exchange.settings.call_ttl_s)
    assert ttl + dt.timedelta(seconds=25) < window <= ttl + dt.timedelta(seconds=30)
    market.connect(offer["call_id"])
    r = market.client.post(f"/v1/calls/{offer['call_id']}/end", json={"duration_s": 60},
                           headers=market.supplier.headers)  # fmt: skip
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "answered_by", r.text
    second = offer["destinations"][1]["address"]
    assert market.end(offer["call_id"], 60, answered_by=second)["answered_by"] == second


def test_a_teams_call_campaign_rings_its_agents_and_bills_the_team(market):
    team = CallTeam(market, "round_robin")
    fund(market.exchange.settings, team.team.id, 50_000)
    body = {"name": "our calls", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": PRICE_MINOR,
            "call": {"min_duration_s": 60}, "buyer_id": str(team.team.id)}  # fmt: skip
    r = market.client.post("/v1/campaigns", json=body, headers=market.op)
    assert r.status_code == 201, r.text  # a team's call campaign may leave its line out
    offer = market.ping()
    assert offer["status"] == "accepted" and offer["payout_minor"] == PRICE_MINOR * 8 // 10
    (destination,) = offer["destinations"]
    assert destination["agent_id"] in {str(a.id) for a in team.agents[:2]}
    call = market.connect(offer["call_id"])
    ended = market.end(offer["call_id"], 60)
    assert ended["status"] == "completed" and ended["sale_id"]
    assert market.rows(leads, leads.c.id == uuid.UUID(call["lead_id"]))[0].status == "sold"
    assert str(team.owner(call["lead_id"]).agent_id) == destination["agent_id"]
    assert balance(market.exchange.settings, team.team.id) == 50_000 - PRICE_MINOR


# --- many at once, on PostgreSQL ------------------------------------------------------------------


def _supplier(market: Market_) -> Principal:
    return Principal(party_id=market.supplier.id, kind=PartyKind.SUPPLIER, key_id=market.supplier.key_id, name="s")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_many_call_pings_at_once_never_take_more_lines_than_the_campaign_has(market):
    lines = 2
    market.call_campaign(caps=[{"window": "concurrent", "max_count": lines}])
    supplier = _supplier(market)

    async def ping(ctx):
        return await calls_service.ping(ctx, supplier, CallPingIn(vertical="solar", fields=CALL_FIELDS))

    results = _in_threads(market.exchange.settings, [ping] * 8)
    statuses = sorted(r.status for r in results)
    assert statuses == ["accepted"] * lines + ["rejected"] * (8 - lines), results
    held = [r for r in market.rows(calls) if r.status == "offered"]
    assert len(held) == lines


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_end_reported_many_times_at_once_bills_once(market):
    market.call_campaign()
    offer = market.ping()
    market.connect(offer["call_id"])
    before = balance(market.exchange.settings, market.buyer.id)
    supplier, call_id = _supplier(market), uuid.UUID(offer["call_id"])

    async def end(ctx):
        return await calls_service.end(ctx, supplier, call_id, EndIn(duration_s=300))

    results = _in_threads(market.exchange.settings, [end] * 6)
    assert {r.status for r in results} == {"completed"} and len({r.sale_id for r in results}) == 1
    assert len(market.rows(sales)) == 1
    assert balance(market.exchange.settings, market.buyer.id) == before - PRICE_MINOR


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_destinations_answering_at_once_give_the_lead_one_owner(market):
    CallTeam(market, "parallel")
    offer = market.ping()
    call = market.connect(offer["call_id"])
    supplier, call_id = _supplier(market), uuid.UUID(offer["call_id"])

    def answer(address):
        async def job(ctx):
            return await calls_service.answer(ctx, supplier, call_id, AnswerIn(address=address))

        return job

    addresses = [d["address"] for d in offer["destinations"]]
    results = _in_threads(market.exchange.settings, [answer(a) for a in addresses * 3])
    won = [r for r in results if not isinstance(r, ApiError)]
    lost = [r for r in results if isinstance(r, ApiError)]
    assert len({r.answered_by for r in won}) == 1  # the same answer repeated is fine
    assert all(e.body.code == "already_answered" for e in lost) and len(lost) >= 2
    owners = market.rows(lead_owners, lead_owners.c.lead_id == uuid.UUID(call["lead_id"]))
    assert len(owners) == 1 and owners[0].status == "owned"
    assert str(owners[0].agent_id) == next(d["agent_id"] for d in offer["destinations"]
                                           if d["address"] == won[0].answered_by)  # fmt: skip
