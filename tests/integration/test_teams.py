"""Internal teams end to end, on SQLite and PostgreSQL: round-robin with weights and a joining
agent, parallel claims racing from separate threads (exactly one owner), sequential offers
moved on by declines and by the sweeper's expiry, the queue, agent scoping and the hand-over of
an unsold lead from POST /v1/leads."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import uuid
from collections import Counter
from typing import Any

import dramatiq
import pytest

from exchange.auth.parties import PartyKind, Principal
from exchange.errors import ApiError
from exchange.store.db import Database
from exchange.teams import routing, service, sweeper
from tests.conftest import decode
from tests.integration.test_auction_api import PERCENT_20
from tests.integration.test_intake_api import solar_lead
from tests.market import set_vertical_margin

THREADS = 8
CLAIMERS = 50  # the issue asks for 50 concurrent claims on one parallel lead
SHORT_TIMEOUT_S = 5  # the shortest offer timeout a team may set


def call(settings, work) -> Any:
    """Run ``work(db)`` on its own loop and pool (as a worker process would)."""

    async def main() -> Any:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


class Team:
    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.client = exchange.client
        self.op = exchange.operator.headers
        exchange.seed_verticals()
        set_vertical_margin(exchange.settings, "solar", PERCENT_20)
        self.supplier = exchange.new_party(PartyKind.SUPPLIER)
        self.team = exchange.new_party(PartyKind.TEAM)
        r = self.client.put(
            "/v1/team-routes",
            json={"vertical": "solar", "team_id": str(self.team.id)},
            headers=self.op,
        )
        assert r.status_code == 200, r.text
        self.leads = 0

    def configure(self, **config: Any) -> dict:
        r = self.client.put(f"/v1/teams/{self.team.id}/config", json=config, headers=self.op)
        assert r.status_code == 200, r.text
        return decode(r)

    def agent(self, **profile: Any):
        agent = self.exchange.new_party(PartyKind.AGENT, team_id=self.team.id)
        profile.setdefault("heartbeat_ttl_s", None)  # presence not tracked unless a test wants it
        r = self.client.put(f"/v1/agents/{agent.id}/profile", json=profile, headers=self.op)
        assert r.status_code == 200, r.text
        return agent

    def post_lead(self) -> uuid.UUID:
        """An unsold lead through POST /v1/leads (no campaigns: nobody buys it)."""
        self.leads += 1
        n = self.leads
        body = solar_lead(
            phone=f"212-555-{n:04d}", email=f"t{n}-{uuid.uuid4().hex[:6]}@example.com"
        )
        r = self.client.post("/v1/leads", json=body, headers=self.supplier.headers)
        out = decode(r)
        assert r.status_code == 201 and out["status"] == "unsold", r.text
        return uuid.UUID(out["lead_id"])

    def route(self, lead_id: uuid.UUID, now: dt.datetime | None = None):
        return call(self.exchange.settings, lambda db: routing.route_lead(db, lead_id, now))

    def sweep(self, now: dt.datetime | None = None):
        return call(self.exchange.settings, lambda db: sweeper.sweep(db, now))

    def routing(self, lead_id: uuid.UUID) -> dict:
        r = self.client.get(f"/v1/leads/{lead_id}/routing", headers=self.op)
        assert r.status_code == 200, r.text
        return decode(r)

    def offers(self, agent, status: str | None = "pending") -> list[dict]:
        params = {"status": status} if status else {}
        r = self.client.get("/v1/agents/me/offers", params=params, headers=agent.headers)
        assert r.status_code == 200, r.text
        return decode(r)["items"]

    def profile(self, agent) -> dict:
        return decode(self.client.get(f"/v1/agents/{agent.id}/profile", headers=self.op))


@pytest.fixture
def team(exchange) -> Team:
    return Team(exchange)


def _principal(agent) -> Principal:
    return Principal(party_id=agent.id, kind=PartyKind.AGENT, key_id=agent.key_id, name="agent")


def test_round_robin_follows_weights_and_a_joining_agent_is_next_once(team):
    team.configure(strategy="round_robin")
    a, b, c = team.agent(weight=1), team.agent(weight=1), team.agent(weight=2)
    names = {a.id: "a", b.id: "b", c.id: "c"}
    owners = [team.route(team.post_lead()) for _ in range(8)]
    assert all(o.status == "owned" for o in owners)
    assert Counter(names[o.agent_id] for o in owners) == {"a": 2, "b": 2, "c": 4}

    d = team.agent(weight=1)  # joins at the team's minimum level: not owed the 8 leads it missed
    names[d.id] = "d"
    assert team.profile(d)["served_in_window"] == 2
    later = [names[team.route(team.post_lead()).agent_id] for _ in range(4)]
    assert Counter(later) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert later[0] == "d"  # at the minimum level and never assigned: d wins the tie, once


def test_parallel_claims_from_many_threads_make_exactly_one_owner(team):
    team.configure(strategy="parallel", offer_timeout_s=300)
    agents = [team.agent() for _ in range(CLAIMERS)]
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    offer_ids = [team.offers(agent)[0]["id"] for agent in agents]

    barrier = threading.Barrier(CLAIMERS)
    results: list[Any] = [None] * CLAIMERS

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(team.exchange.settings)
            try:
                await db.ping()
                barrier.wait()
                return await service.take_offer(db, _principal(agents[i]), uuid.UUID(offer_ids[i]))
            except ApiError as exc:
                return exc
            finally:
                await db.dispose()

        results[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    won = [r for r in results if not isinstance(r, ApiError)]
    lost = [r for r in results if isinstance(r, ApiError)]
    assert len(won) == 1 and len(lost) == CLAIMERS - 1, results
    winner = won[0].agent_id
    for exc in lost:
        assert exc.status == 409 and exc.body.code == "already_claimed"
        assert exc.body.details["lead_status"] == "owned"
        assert exc.body.details["owner_id"] == str(winner)
    assert team.routing(lead_id)["agent_id"] == str(winner)
    statuses = Counter(o["status"] for agent in agents for o in team.offers(agent, None))
    assert statuses == {"accepted": 1, "rescinded": CLAIMERS - 1}

    # A late claim over HTTP: 409 naming the lead's state.
    late = next(a for a in agents if a.id != winner)
    mine = team.offers(late, None)[0]["id"]
    r = team.client.post(f"/v1/offers/{mine}/claim", headers=late.headers)
    assert r.status_code == 409
    assert decode(r)["error"]["details"]["lead_status"] == "owned"


def test_sequential_moves_on_by_decline_and_by_the_sweepers_expiry(team):
    team.configure(strategy="sequential", offer_timeout_s=SHORT_TIMEOUT_S, max_rounds=1)
    agents = [team.agent(), team.agent(), team.agent()]
    lead_id = team.post_lead()
    assert team.route(lead_id).status == "offered"
    holders = [a for a in agents if team.offers(a)]
    assert len(holders) == 1
    first = holders[0]
    offer = team.offers(first)[0]

    r = team.client.post(f"/v1/offers/{offer['id']}/decline", headers=first.headers)
    assert r.status_code == 200 and decode(r)["status"] == "offered"
    holders = [a for a in agents if team.offers(a)]
    assert len(holders) == 1 and holders[0] is not first
    second = holders[0]
    second_offer = team.offers(second)[0]

    # The client does nothing: the server's sweeper expires the offer and moves on.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SHORT_TIMEOUT_S + 1)
    assert team.sweep(later).expired == 1
    assert team.offers(second, "expired")[0]["id"] == second_offer["id"]
    third = next(a for a in agents if a is not first and a is not second)
    third_offer = team.offers(third)[0]

    # Accepting after the expiry is refused, whether or not the timer already ran.
    r = team.client.post(f"/v1/offers/{second_offer['id']}/accept", headers=second.headers)
    assert r.status_code == 409
    after = later + dt.timedelta(seconds=SHORT_TIMEOUT_S + 1)
    with pytest.raises(ApiError) as refused:
        call(team.exchange.settings,
             lambda db: service.take_offer(db, _principal(third), uuid.UUID(third_offer["id"]), after))  # fmt: skip
    assert refused.value.status == 409 and refused.value.body.code == "offer_expired"

    # The last offer runs out too: one round was allowed, so the lead falls back to the queue.
    assert team.sweep(after).expired == 1
    routing = team.routing(lead_id)
    assert routing["status"] == "queued" and routing["reason"] == "rounds_exhausted"


def test_sequential_accept_makes_the_owner_who_sees_the_pii(team):
    team.configure(strategy="sequential", offer_timeout_s=60)
    agent = team.agent()
    other = team.agent(daily_cap=0)  # never eligible
    lead_id = team.post_lead()
    team.route(lead_id)
    offer = team.offers(agent)[0]
    assert "phone" not in offer["fields"]  # an offer shows no PII

    # Another agent may not answer it, nor record contact on it.
    assert (
        team.client.post(f"/v1/offers/{offer['id']}/accept", headers=other.headers).status_code
        == 403
    )
    assert team.client.get("/v1/agents/me/offers", headers=other.headers).json()["items"] == []

    r = team.client.post(f"/v1/offers/{offer['id']}/accept", headers=agent.headers)
    assert r.status_code == 200 and decode(r)["agent_id"] == str(agent.id)
    [mine] = decode(team.client.get("/v1/agents/me/leads", headers=agent.headers))["items"]
    assert mine["lead_id"] == str(lead_id) and mine["pii"]["phone"]
    assert decode(team.client.get("/v1/agents/me/leads", headers=other.headers))["items"] == []
    assert (
        team.client.post(f"/v1/leads/{lead_id}/contacted", headers=other.headers).status_code == 403
    )
    r = team.client.post(f"/v1/leads/{lead_id}/contacted", headers=agent.headers)
    assert r.status_code == 200 and decode(r)["first_contact_at"]
    assert team.profile(agent)["open_leads"] == 1

    # Keys of other kinds have no agent "me".
    assert (
        team.client.post("/v1/agents/me/heartbeat", headers=team.supplier.headers).status_code
        == 403
    )
    assert team.client.post("/v1/agents/me/heartbeat", headers=team.op).status_code == 403


def test_nobody_eligible_queues_until_an_agent_comes_online(team):
    team.configure(strategy="round_robin")
    agent = team.agent(heartbeat_ttl_s=90)  # tracks presence: offline until it heartbeats
    lead_id = team.post_lead()
    routed = team.route(lead_id)
    assert (routed.status, routed.reason) == ("queued", "nobody_eligible")
    assert team.sweep().drained == 0

    # The heartbeat drains the team's queue at once, not at the next sweep.
    r = team.client.post("/v1/agents/me/heartbeat", headers=agent.headers)
    assert r.status_code == 200 and decode(r)["online"] is True
    assert decode(r)["open_leads"] == 1
    routing = team.routing(lead_id)
    assert routing["status"] == "owned" and routing["agent_id"] == str(agent.id)
    assert team.sweep().drained == 0

    # Away beats a fresh heartbeat: the next lead waits again.
    r = team.client.put("/v1/agents/me/status", json={"status": "away"}, headers=agent.headers)
    assert r.status_code == 200
    assert team.route(team.post_lead()).status == "queued"


def test_first_contact_sla_reassigns_to_another_agent(team):
    team.configure(strategy="round_robin", sla_minutes=10, max_reassigns=1)
    a, b = team.agent(), team.agent()
    lead_id = team.post_lead()
    first = team.route(lead_id).agent_id
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11)
    assert team.sweep(later).reassigned == 1
    routing = team.routing(lead_id)
    assert routing["status"] == "owned" and routing["agent_id"] not in (None, str(first))
    assert routing["reassign_count"] == 1
    assert {str(a.id), str(b.id)} == {str(first), routing["agent_id"]}


def test_an_unsold_lead_from_post_is_handed_to_its_team(team):
    team.configure(strategy="round_robin")
    agent = team.agent()
    broker = dramatiq.get_broker()
    broker.flush_all()
    lead_id = team.post_lead()
    sent = [dramatiq.Message.decode(raw) for raw in broker.queues["teams"].queue]
    assert [(m.actor_name, list(m.args)) for m in sent] == [("route_to_team", [str(lead_id)])]
    # Even if that message is lost, the sweeper routes an unsold lead that has a route.
    assert team.sweep().drained == 0
    routing = team.routing(lead_id)
    assert routing["status"] == "owned" and routing["agent_id"] == str(agent.id)
    assert team.route(lead_id).agent_id == agent.id  # routing again changes nothing


def test_caps_hold_and_bad_settings_are_refused_naming_the_field(team):
    team.configure(strategy="round_robin")
    agent = team.agent(concurrent_cap=1)
    first, second = team.post_lead(), team.post_lead()
    assert team.route(first).agent_id == agent.id
    routed = team.route(second)
    assert (routed.status, routed.reason) == ("queued", "nobody_eligible")
    assert team.profile(agent)["open_leads"] == 1

    r = team.client.put(
        f"/v1/agents/{agent.id}/profile", json={"timezone": "Mars/Olympus"}, headers=team.op
    )
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "timezone"
    r = team.client.put(
        f"/v1/teams/{team.team.id}/config", json={"strategy": "lottery"}, headers=team.op
    )
    assert r.status_code == 400 or r.status_code == 422
    r = team.client.put(
        "/v1/team-routes", json={"vertical": "nope", "team_id": str(team.team.id)}, headers=team.op
    )
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "vertical"
    bad = {"fallback": {"kind": "person", "target": str(team.supplier.id)}}
    r = team.client.put(f"/v1/teams/{team.team.id}/config", json=bad, headers=team.op)
    assert r.status_code == 422 and decode(r)["error"]["fields"][0]["path"] == "fallback.target"
    # Only operators configure; an agent key may not.
    r = team.client.put(f"/v1/teams/{team.team.id}/config", json={}, headers=agent.headers)
    assert r.status_code == 403


def test_parallel_offers_fall_back_when_nobody_claims_or_all_decline(team):
    team.configure(strategy="parallel", offer_timeout_s=SHORT_TIMEOUT_S, parallel_k=2)
    agents = [team.agent(), team.agent(), team.agent()]
    expiring = team.post_lead()
    team.route(expiring)
    assert sum(len(team.offers(a)) for a in agents) == 2  # parallel_k
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SHORT_TIMEOUT_S + 1)
    assert team.sweep(later).expired == 1
    routing = team.routing(expiring)
    assert (routing["status"], routing["reason"]) == ("queued", "no_claim_before_expiry")

    declined = team.post_lead()
    team.route(declined)
    holders = [a for a in agents if any(o["lead_id"] == str(declined) for o in team.offers(a))]
    for agent in holders:
        offer = next(o for o in team.offers(agent) if o["lead_id"] == str(declined))
        r = team.client.post(f"/v1/offers/{offer['id']}/decline", headers=agent.headers)
        assert r.status_code == 200
    routing = team.routing(declined)
    assert (routing["status"], routing["reason"]) == ("queued", "all_declined")


def test_working_hours_are_read_in_the_agents_time_zone(team):
    team.configure(strategy="round_robin")
    nine_to_five = {"timezone": "UTC", "days": {"mon": [{"start": 540, "end": 1020}]}}
    agent = team.agent(timezone="Asia/Tokyo", working_hours=nine_to_five)
    assert team.profile(agent)["working_hours"]["timezone"] == "Asia/Tokyo"
    monday_10_tokyo = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # 10:00 in Tokyo
    monday_21_tokyo = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)  # 12:00 UTC, 21:00 there
    assert team.route(team.post_lead(), monday_10_tokyo).agent_id == agent.id
    routed = team.route(team.post_lead(), monday_21_tokyo)
    assert (routed.status, routed.reason) == ("queued", "nobody_eligible")


def test_a_person_fallback_owns_the_lead_nobody_claimed(team):
    supervisor = team.agent(daily_cap=5, weight=1)
    team.configure(
        strategy="parallel",
        offer_timeout_s=SHORT_TIMEOUT_S,
        fallback={"kind": "person", "target": str(supervisor.id)},
    )
    team.agent()
    lead_id = team.post_lead()
    team.route(lead_id)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=SHORT_TIMEOUT_S + 1)
    assert team.sweep(later).expired == 1
    routing = team.routing(lead_id)
    assert routing["status"] == "owned" and routing["agent_id"] == str(supervisor.id)


def _close(team, agent, lead_id, **body: Any):
    body.setdefault("outcome", "won")
    return team.client.post(f"/v1/leads/{lead_id}/close", json=body, headers=agent.headers)


def test_closing_an_owned_lead_frees_the_concurrent_cap(team):
    team.configure(strategy="round_robin")
    agent = team.agent(concurrent_cap=1)
    other = team.agent(heartbeat_ttl_s=90)  # never heartbeats: offline, owns nothing
    first, second = team.post_lead(), team.post_lead()
    assert team.route(first).agent_id == agent.id
    assert team.route(second).status == "queued"  # the cap is full

    assert _close(team, other, first).status_code == 403  # not its lead
    assert _close(team, agent, second).status_code == 403  # queued, owned by nobody
    assert _close(team, agent, first, outcome="sold_twice").status_code in (400, 422)
    r = _close(team, agent, first, outcome="won", note="signed on the call")
    assert r.status_code == 200, r.text
    closed = decode(r)
    assert (closed["status"], closed["reason"], closed["agent_id"]) == (
        "closed",
        "won",
        str(agent.id),
    )
    assert team.profile(agent)["open_leads"] == 0
    again = _close(team, agent, first, outcome="won")  # idempotent: same answer, no second release
    assert again.status_code == 200 and decode(again)["status"] == "closed"
    assert team.profile(agent)["open_leads"] == 0
    r = team.client.get("/v1/agents/me/leads", headers=agent.headers)
    assert [i["lead_id"] for i in decode(r)["items"]] == []

    # The freed capacity takes the queued lead; closing it leaves open_leads at 0, never below.
    assert team.sweep().drained == 1
    assert team.routing(second)["agent_id"] == str(agent.id)
    assert team.profile(agent)["open_leads"] == 1
    assert _close(team, agent, second, outcome="bad_lead").status_code == 200
    assert _close(team, agent, second, outcome="lost").status_code == 200
    assert team.profile(agent)["open_leads"] == 0
    assert team.routing(second)["reason"] == "bad_lead"  # the first close's outcome stands


def test_sla_counts_working_minutes_when_the_team_says_so(team):
    cfg = team.configure(strategy="round_robin", sla_minutes=10, sla_working_hours=True)
    assert cfg["sla_working_hours"] is True and cfg["skill_fields"] is None
    hours = {"timezone": "UTC", "days": {d: [{"start": 540, "end": 1020}] for d in ("mon", "tue")}}
    team.agent(working_hours=hours)
    team.agent(working_hours=hours)
    monday_1655 = dt.datetime(2026, 1, 5, 16, 55, tzinfo=dt.UTC)
    lead_id = team.post_lead()
    first = team.route(lead_id, monday_1655).agent_id
    # 15 clock minutes later, but only 5 working minutes: no breach.
    assert team.sweep(monday_1655 + dt.timedelta(minutes=15)).reassigned == 0
    # Tuesday 09:04 is 9 working minutes; 09:05 is the 10th: reassigned.
    tuesday_0904 = dt.datetime(2026, 1, 6, 9, 4, tzinfo=dt.UTC)
    assert team.sweep(tuesday_0904).reassigned == 0
    assert team.sweep(tuesday_0904 + dt.timedelta(minutes=1)).reassigned == 1
    routing = team.routing(lead_id)
    assert routing["status"] == "owned" and routing["agent_id"] != str(first)

    # Without the flag the same lead would have breached on the clock (the default).
    cfg = team.configure(strategy="round_robin", sla_minutes=10)
    assert cfg["sla_working_hours"] is False


def test_round_robin_counts_start_fresh_each_local_day(team):
    team.configure(strategy="round_robin")
    a = team.agent()
    b = team.agent(working_hours={"timezone": "UTC", "days": {"tue": [{"start": 0, "end": 1440}]}})
    names = {a.id: "a", b.id: "b"}
    monday = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)
    tuesday = monday + dt.timedelta(days=1)
    assert [names[team.route(team.post_lead(), monday).agent_id] for _ in range(3)] == ["a"] * 3
    # Tuesday is a new window: a's three Monday leads no longer count, so b is not handed the
    # next three; they alternate (b first: never assigned).
    later = [
        names[team.route(team.post_lead(), tuesday + dt.timedelta(minutes=i)).agent_id]
        for i in range(4)
    ]
    assert later == ["b", "a", "b", "a"]
    # Read today, those January counts are stale: the profile shows today's window.
    assert team.profile(a)["served_in_window"] == 0


def test_coming_available_drains_the_queue_at_once_bounded(team, monkeypatch):
    team.configure(strategy="round_robin")
    agent = team.agent()
    r = team.client.put("/v1/agents/me/status", json={"status": "away"}, headers=agent.headers)
    assert r.status_code == 200
    waiting = [team.post_lead() for _ in range(3)]
    assert all(team.route(lead).status == "queued" for lead in waiting)

    monkeypatch.setattr(sweeper, "PRESENCE_DRAIN", 2)
    r = team.client.put("/v1/agents/me/status", json={"status": "available"}, headers=agent.headers)
    assert r.status_code == 200 and decode(r)["open_leads"] == 2
    assert [team.routing(lead)["status"] for lead in waiting] == ["owned", "owned", "queued"]
    assert team.sweep().drained == 1  # the rest at the next sweep (or the next presence call)


def test_routing_audit_lists_offers_and_excluded_agents(team):
    team.configure(strategy="sequential", offer_timeout_s=60)
    a, b = team.agent(), team.agent()
    offline = team.agent(heartbeat_ttl_s=90)
    lead_id = team.post_lead()
    team.route(lead_id)
    first, second = (a, b) if team.offers(a) else (b, a)
    offer = team.offers(first)[0]
    assert (
        team.client.post(f"/v1/offers/{offer['id']}/decline", headers=first.headers).status_code
        == 200
    )

    audit = team.routing(lead_id)
    assert audit["status"] == "offered"
    assert [(o["agent_id"], o["status"], o["round"]) for o in audit["offers"]] == [
        (str(first.id), "declined", 1),
        (str(second.id), "pending", 1),
    ]
    assert audit["offers"][0]["decided_at"] is not None
    assert audit["offers"][1]["decided_at"] is None and audit["offers"][1]["expires_at"]
    assert audit["excluded"] == [{"agent_id": str(offline.id), "reason": "agent_offline"}]

    r = team.client.get(f"/v1/leads/{lead_id}/routing", headers=a.headers)
    assert r.status_code == 403  # operators only


def test_routers_assigning_at_once_never_exceed_a_cap_or_give_a_lead_two_owners(team):
    """Eight routers (threads with their own loop and pool, like worker processes) route eight
    leads at once to a round-robin team of two agents who may hold two open leads each."""
    team.configure(strategy="round_robin")
    agents = [team.agent(concurrent_cap=2) for _ in range(2)]
    leads = [team.post_lead() for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def worker(i: int) -> None:
        async def main() -> Any:
            db = Database(team.exchange.settings)
            try:
                await db.ping()
                barrier.wait()
                return await routing.route_lead(db, leads[i], None)
            finally:
                await db.dispose()

        results[i] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    owners = Counter(team.routing(lead)["agent_id"] for lead in leads)
    queued = owners.pop(None, 0)
    assert sorted(owners.values()) == [2, 2] and queued == THREADS - 4, owners
    assert {p["open_leads"] for p in (team.profile(a) for a in agents)} == {2}


def test_a_team_that_buys_in_the_auction_works_the_lead(team):
    """An internal team bids like a buyer (its campaign's fixed price is its internal value per
    lead, on its own tier); a lead it wins is sold to it and handed to its agents."""
    team.configure(strategy="round_robin")
    agent = team.agent()
    r = team.client.put(f"/v1/buyers/{team.team.id}/account", json={"credit_limit_minor": 1_000_000}, headers=team.op)
    assert r.status_code == 200, r.text
    campaign = {"name": "in-house solar", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": 500, "tier": 2}
    r = team.client.post("/v1/campaigns", json=campaign, headers=team.team.headers)
    assert r.status_code == 201, r.text
    body = solar_lead(phone="212-555-0190", email="inhouse@example.com")
    out = decode(team.client.post("/v1/leads", json=body, headers=team.supplier.headers))
    assert (out["status"], out["payout_minor"]) == ("sold", 400)
    lead_id = uuid.UUID(out["lead_id"])
    owned = team.route(lead_id)
    assert owned.status == "owned" and owned.agent_id == agent.id
    assert team.routing(lead_id)["agent_id"] == str(agent.id)
