"""Teams' campaigns ranked by conversion, end to end on SQLite and PostgreSQL: two teams bid the
same internal value; the agents of each report outcomes on the leads their team bought; the
next lead goes to the team that converts better, at the same price. A buyer cannot set it."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from exchange.auth.parties import PartyKind
from exchange.outcomes import stats
from exchange.store.tables import sales, traces
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.integration.test_teams import Team

PRICE = 500


def _campaign(team: Team, party, **extra) -> str:
    body = {"name": "in-house solar", "vertical": "solar", "price_mode": "fixed",
            "fixed_price_minor": PRICE, **extra}  # fmt: skip
    r = team.client.post("/v1/campaigns", json=body, headers=party.headers)
    assert r.status_code == 201, r.text
    return decode(r)["id"]


def _buying_team(team: Team, party) -> tuple[str, object]:
    r = team.client.put(
        f"/v1/buyers/{party.id}/account", json={"credit_limit_minor": 1_000_000}, headers=team.op
    )
    assert r.status_code == 200, r.text
    r = team.client.put(
        f"/v1/teams/{party.id}/config", json={"strategy": "round_robin"}, headers=team.op
    )
    assert r.status_code == 200, r.text
    agent = team.exchange.new_party(PartyKind.AGENT, team_id=party.id)
    r = team.client.put(
        f"/v1/agents/{agent.id}/profile", json={"heartbeat_ttl_s": None}, headers=team.op
    )
    assert r.status_code == 200, r.text
    return _campaign(team, party, rank_by_conversion=True), agent


def _sell(team: Team) -> tuple[uuid.UUID, str]:
    """A lead through POST /v1/leads; (its id, the campaign that bought it)."""
    team.leads += 1
    n = team.leads
    body = solar_lead(phone=f"212-555-{n:04d}", email=f"conv{n}-{uuid.uuid4().hex[:6]}@example.com")
    out = decode(team.client.post("/v1/leads", json=body, headers=team.supplier.headers))
    assert out["status"] == "sold", out
    lead_id = uuid.UUID(out["lead_id"])

    async def work(conn):
        found = await conn.execute(
            sa.select(sales.c.campaign_id, sales.c.price_minor).where(sales.c.lead_id == lead_id)
        )
        return found.one()

    campaign_id, price = run(team.exchange.settings, work)
    assert price == PRICE  # the weight moves the order, never the price
    return lead_id, str(campaign_id)


def _weighed(settings) -> list[dict]:
    """Every trace entry that records a conversion weight, oldest first."""

    async def work(conn):
        rows = await conn.execute(sa.select(traces.c.decisions).order_by(traces.c.created_at))
        return [
            e
            for row in rows
            for e in row.decisions["entries"]
            if "weight_bps" in e.get("details", {})
        ]

    return run(settings, work)


def test_the_better_converting_team_gets_the_next_lead(exchange):
    team = Team(exchange)  # team A, the vertical's route, a supplier
    a_campaign, a_agent = _buying_team(team, team.team)
    b = exchange.new_party(PartyKind.TEAM)
    b_campaign, b_agent = _buying_team(team, b)
    agent_of = {a_campaign: a_agent, b_campaign: b_agent}

    sold = [_sell(team) for _ in range(4)]
    # Neutral so far (no outcomes): equal bids alternate by least recent winner.
    assert sorted(c for _, c in sold) == sorted([a_campaign, b_campaign] * 2)
    last_winner = sold[-1][1]  # neutral ranking would give the next lead to the other team
    for lead_id, campaign_id in sold:
        agent = agent_of[campaign_id]
        assert team.route(lead_id).agent_id == agent.id
        kind = "won" if campaign_id == last_winner else "lost"
        r = team.client.post(
            f"/v1/leads/{lead_id}/outcomes", json={"kind": kind}, headers=agent.headers
        )
        assert r.status_code == 201, r.text
        # A second final outcome on the lead (the team as its buyer) does not count it again.
        party = team.team if campaign_id == a_campaign else b
        r = team.client.post(
            f"/v1/leads/{lead_id}/outcomes", json={"kind": "lost"}, headers=party.headers
        )
        assert r.status_code == 201, r.text

    subjects = [stats.campaign_subject(a_campaign), stats.campaign_subject(b_campaign)]
    counted = run(exchange.settings, lambda conn: stats.read(conn, subjects, ["*"]))
    winner_subject = stats.campaign_subject(last_winner)
    loser_subject = next(s for s in subjects if s != winner_subject)
    assert counted == {
        (winner_subject, "*"): stats.Counts(2, 2, 0),
        (loser_subject, "*"): stats.Counts(2, 0, 0),
    }

    lead_id, campaign_id = _sell(team)
    assert campaign_id == last_winner  # by conversion, although it won the lead before
    assert team.route(lead_id).agent_id == agent_of[last_winner].id
    notes = {e["campaign_id"]: e["details"] for e in _weighed(exchange.settings)[-2:]}
    # 2/2 and 0/2 against a base of 50 %, 10 pseudo-leads: 7/12 and 5/12.
    assert notes[last_winner]["weight_bps"] == 11_667
    assert notes[last_winner]["conversion"] == "conversion 58% vs 50% (2/2 won, *): x1.17"
    loser = next(c for c in notes if c != last_winner)
    assert notes[loser]["weight_bps"] == 8_333


def test_only_a_teams_campaign_may_rank_by_conversion(exchange):
    exchange.seed_verticals()
    buyer = exchange.new_party(PartyKind.BUYER)
    body = {"name": "x", "vertical": "solar", "price_mode": "fixed", "fixed_price_minor": PRICE,
            "rank_by_conversion": True}  # fmt: skip
    r = exchange.client.post("/v1/campaigns", json=body, headers=buyer.headers)
    assert r.status_code == 422, r.text
    assert [f["path"] for f in decode(r)["error"]["fields"]] == ["rank_by_conversion"]
    body["rank_by_conversion"] = False
    r = exchange.client.post("/v1/campaigns", json=body, headers=buyer.headers)
    assert r.status_code == 201 and decode(r)["rank_by_conversion"] is False, r.text
    team = exchange.new_party(PartyKind.TEAM)
    body["rank_by_conversion"] = True
    r = exchange.client.post("/v1/campaigns", json=body, headers=team.headers)
    assert r.status_code == 201 and decode(r)["rank_by_conversion"] is True, r.text
