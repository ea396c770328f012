"""Smarter team routing end to end, on SQLite and PostgreSQL: performance-based and predictive
choice from reported conversions under a fairness floor, hybrid rules switching the strategy on
the team's wall clock across a DST change, score tiers, and account ownership (a returning
person or company goes to its owner; an owner away falls back to the team's strategy)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.outcomes import stats
from exchange.store.tables import leads, verticals
from tests.conftest import decode, run
from tests.integration.test_intake_api import solar_lead
from tests.integration.test_teams import Team

NOW = dt.datetime(2026, 11, 24, 15, tzinfo=dt.UTC)
NINE_TO_FIVE_WEEKDAYS = {
    "timezone": "UTC",
    "days": {d: [{"start": 540, "end": 1020}] for d in ("mon", "tue", "wed", "thu", "fri")},
}


@pytest.fixture
def team(exchange) -> Team:
    t = Team(exchange)
    # Returning people are the point here: the vertical's duplicate window would refuse them.
    run(exchange.settings, lambda c: c.execute(
        verticals.update().where(verticals.c.slug == "solar").values(dedupe_window_days=0)))
    return t


def seed(team: Team, counts: dict[str, tuple[int, int]], segment: str = "*") -> None:
    """Reported outcomes as routing reads them: subject -> (trials, wins)."""

    async def work(conn: Any) -> None:
        for subject, (trials, wins) in counts.items():
            for i in range(trials):
                await stats.add(conn, [(subject, segment)], stats.count_for(i < wins, None), NOW)

    run(team.exchange.settings, work)


def post(team: Team, **fields: Any) -> uuid.UUID:
    team.leads += 1
    n = team.leads
    fields.setdefault("phone", f"212-555-{n:04d}")
    fields.setdefault("email", f"t{n}-{uuid.uuid4().hex[:6]}@example.com")
    r = team.client.post("/v1/leads", json=solar_lead(**fields), headers=team.supplier.headers)
    assert r.status_code == 201 and decode(r)["status"] == "unsold", r.text
    return uuid.UUID(decode(r)["lead_id"])


def set_score(team: Team, lead_id: uuid.UUID, score: int, priority: str) -> None:
    run(team.exchange.settings, lambda c: c.execute(
        leads.update().where(leads.c.id == lead_id).values(score=score, priority=priority)))


def test_performance_routing_prefers_the_converting_agent_and_keeps_the_floor(team):
    a, b = team.agent(), team.agent()
    seed(team, {stats.agent_subject(a.id): (100, 40), stats.agent_subject(b.id): (100, 5),
                stats.team_subject(team.team.id): (200, 45)})  # fmt: skip
    team.configure(strategy="performance", routing={"fairness_floor_pct": 0})
    owners = [team.route(post(team), NOW) for _ in range(3)]
    assert [o.agent_id for o in owners] == [a.id] * 3
    decision = team.routing(owners[0].lead_id)["decision"]
    assert decision["strategy"] == "performance"
    assert "estimated 38% (40/100 won) vs team 22%" in decision["explanation"]

    # With a floor of 100 % of an equal share, b (0 of 3) is owed the next lead.
    team.configure(strategy="performance", routing={"fairness_floor_pct": 100})
    routed = team.route(post(team), NOW)
    assert routed.agent_id == b.id
    assert "fairness floor" in team.routing(routed.lead_id)["decision"]["explanation"]


def test_predictive_routing_learns_from_outcomes_and_explains_its_choice(team):
    good, poor = team.agent(), team.agent()
    seed(team, {stats.agent_subject(good.id): (200, 60), stats.agent_subject(poor.id): (200, 10),
                stats.team_subject(team.team.id): (400, 70)})  # fmt: skip
    team.configure(strategy="predictive", routing={"fairness_floor_pct": 0})
    owners = Counter(team.route(post(team), NOW).agent_id for _ in range(12))
    assert owners[good.id] >= 10, owners
    lead_id = team.route(post(team), NOW).lead_id
    decision = team.routing(lead_id)["decision"]
    assert decision["strategy"] == "predictive"
    assert decision["explanation"].startswith("predictive: chosen")
    assert "vs team 18%" in decision["explanation"]


def test_hybrid_rules_switch_the_strategy_on_the_teams_clock_across_dst(team):
    team.agent(), team.agent()
    rules = [{"strategy": "round_robin", "hours": NINE_TO_FIVE_WEEKDAYS}]
    team.configure(strategy="predictive",
                   routing={"timezone": "America/New_York", "rules": rules})  # fmt: skip

    def strategy_at(when: dt.datetime) -> str:
        lead_id = post(team)
        team.route(lead_id, when)
        return team.routing(lead_id)["decision"]["strategy"]

    # 13:30 UTC is 08:30 in New York before the spring-forward of 8 March 2026, 09:30 after.
    assert strategy_at(dt.datetime(2026, 3, 6, 13, 30, tzinfo=dt.UTC)) == "predictive"
    assert strategy_at(dt.datetime(2026, 3, 9, 13, 30, tzinfo=dt.UTC)) == "round_robin"
    assert strategy_at(dt.datetime(2026, 3, 9, 21, 30, tzinfo=dt.UTC)) == "predictive"

    bad = {"strategy": "round_robin", "routing": {"timezone": "Mars/Olympus"}}
    r = team.client.put(f"/v1/teams/{team.team.id}/config", json=bad, headers=team.op)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "routing.timezone"
    bad = {"routing": {"rules": [{"strategy": "parallel", "min_score": 90, "max_score": 10}]}}
    r = team.client.put(f"/v1/teams/{team.team.id}/config", json=bad, headers=team.op)
    assert r.status_code == 422
    assert decode(r)["error"]["fields"][0]["path"] == "routing.rules[0].max_score"


def test_high_scores_go_to_senior_agents_first_and_a_score_rule_picks_the_strategy(team):
    senior, junior = team.agent(tier=1), team.agent(tier=2)
    assert team.profile(senior)["tier"] == 1
    team.configure(strategy="round_robin", routing={
        "score_tiers": [{"min_score": 80, "tiers": [1]}],
        "rules": [{"strategy": "sequential", "max_score": 20}],
    })  # fmt: skip
    hot = []
    for _ in range(3):
        lead_id = post(team)
        set_score(team, lead_id, 90, "high")
        hot.append(team.route(lead_id, NOW))
    assert [o.agent_id for o in hot] == [senior.id] * 3  # round-robin would alternate
    decision = team.routing(hot[0].lead_id)["decision"]
    assert decision["tiers"] == [1] and decision["segment"] == "priority=high"
    normal = post(team)
    set_score(team, normal, 60, "normal")
    assert team.route(normal, NOW).agent_id == junior.id  # junior's turn: no tier preference
    cold = post(team)
    set_score(team, cold, 10, "low")
    assert team.route(cold, NOW).status == "offered"  # the score rule: sequential offers
    assert team.routing(cold)["decision"]["strategy"] == "sequential"


def test_a_returning_person_or_company_goes_to_its_owner_and_falls_back_when_away(team):
    a, b = team.agent(), team.agent()
    team.configure(strategy="round_robin", routing={"account_window_days": 30})
    first = team.route(post(team, email="pat@acme-solar.com"), NOW)
    owner, other = (a, b) if first.agent_id == a.id else (b, a)

    # Same company (domain), another person: round-robin would give it to the other agent.
    colleague = team.route(post(team, email="sam@acme-solar.com"), NOW)
    assert colleague.agent_id == owner.id
    decision = team.routing(colleague.lead_id)["decision"]
    assert decision["strategy"] == "account" and decision["account"].startswith("owner took it")
    assert "domain match" in decision["account"]

    # The same person again (same phone as the first lead), while the owner is away.
    r = team.client.put("/v1/agents/me/status", json={"status": "away"}, headers=owner.headers)
    assert r.status_code == 200
    phone = team.routing(first.lead_id)  # the first lead's phone: 212-555-0001
    assert phone["agent_id"] == str(owner.id)
    back = team.route(post(team, phone="212-555-0001", email="pat.home@gmail.com"), NOW)
    assert back.agent_id == other.id
    decision = team.routing(back.lead_id)["decision"]
    assert decision["strategy"] == "round_robin"
    assert "not eligible: agent_away" in decision["account"]
    assert "phone match" in decision["account"]

    # Free-mail domains are not companies; outside the window nobody owns anything.
    stranger = team.route(post(team, email="someone@gmail.com"), NOW)
    assert team.routing(stranger.lead_id)["decision"].get("account") is None
    r = team.client.put("/v1/agents/me/status", json={"status": "available"}, headers=owner.headers)
    assert r.status_code == 200
    late = team.route(post(team, email="lee@acme-solar.com"), NOW + dt.timedelta(days=31))
    assert team.routing(late.lead_id)["decision"].get("account") is None


def test_account_keys_hold_no_pii(team):
    team.agent()
    team.configure(strategy="round_robin", routing={"account_window_days": 30})
    team.route(post(team, email="pat@acme-solar.com"), NOW)

    async def work(conn: Any) -> list[Any]:
        return (await conn.execute(sa.text("SELECT key_hash, kind FROM account_owners"))).all()

    rows = run(team.exchange.settings, work)
    assert sorted(r.kind for r in rows) == ["domain", "email", "phone"]
    assert all(len(r.key_hash) == 64 and "acme" not in r.key_hash for r in rows)
