"""The market simulator: deterministic, money that adds up, the fairness floor kept, and the
issue's claim: with agents whose hidden rates differ, predictive routing converts more than
round-robin at the same fairness floor."""

from __future__ import annotations

import msgspec
import pytest

from exchange import cli
from exchange.simulation import default_scenario, engine, simulate
from exchange.simulation.report import Report

ALL = ("round_robin", "performance", "predictive", "hybrid", "sequential", "parallel")
OFFERS = ("sequential", "parallel")


def short(seed: int = 1, **kw) -> msgspec.Struct:
    """Three hours from 09:00 on a Monday: quick, and agents are at work."""
    return default_scenario(seed=seed, agents=8, leads_per_day=2000, hours=3, start_hour=9, **kw)


def without_timings(report: Report) -> bytes:
    results = tuple(msgspec.structs.replace(r, seconds=0.0) for r in report.results)
    return msgspec.json.encode(msgspec.structs.replace(report, results=results))


def test_same_seed_same_report_and_another_seed_another():
    first = simulate(short(seed=4), ALL)
    assert without_timings(first) == without_timings(simulate(short(seed=4), ALL))
    assert without_timings(first) != without_timings(simulate(short(seed=5), ALL))


def test_every_strategy_sees_the_same_leads_and_auction():
    report = simulate(short(seed=2), ALL)
    market = {(r.leads, r.sold, r.revenue_minor, r.margin_minor, r.to_team) for r in report.results}
    assert len(market) == 1  # only the team's side differs between strategies
    assert all(r.assigned > 0 for r in report.results)


def test_money_adds_up_in_integer_minor_units():
    report = simulate(default_scenario(seed=3, leads_per_day=3000), ALL)  # one whole day
    for r in report.results:
        for amount in (r.revenue_minor, r.payouts_minor, r.margin_minor):
            assert isinstance(amount, int) and amount > 0
        assert r.revenue_minor == r.payouts_minor + r.margin_minor
        assert sum(a.spent_minor for a in r.advertisers) == r.revenue_minor
        assert sum(a.won for a in r.advertisers) == r.sold
        assert r.sold + r.to_team == r.leads
        assert r.assigned + r.unassigned == r.to_team
        for a in r.advertisers:  # one day: its budget and cap bound the run's totals
            assert a.spent_minor <= a.daily_budget_minor
            assert a.daily_cap is None or a.won <= a.daily_cap
        assert sum(a.leads for a in r.agents) == r.assigned
        assert sum(a.conversions for a in r.agents) == r.conversions


@pytest.mark.parametrize("floor", [50, 80])
def test_fairness_floor_holds_at_the_end_of_the_day(floor):
    """Agents available all day (no hours, no breaks) end the day with at least ``floor`` % of
    an equal share, less 3 leads. Why the slack: an agent is owed only once it is below the
    floor (``performance.owed``), owed agents are served one at a time in round-robin order, and
    the count compares against the agents eligible at that moment (one at its concurrent cap is
    left out), so an agent can trail the floor by a lead or two; over 10 seeds and floors
    30/50/80 the worst was 2.6 leads (of an equal share near 100)."""
    for seed in (1, 2):
        scenario = default_scenario(seed=seed, floor_pct=floor, always_available=True)
        for r in simulate(scenario, ("performance", "predictive")).results:
            equal = r.assigned / len(r.agents)
            for a in r.agents:
                assert a.leads >= floor / 100 * equal - 3, (seed, r.strategy, a)


def test_predictive_converts_more_than_round_robin_at_the_same_floor():
    """THE claim of issue 8. Hidden rates 5%..30% over 20 agents, fairness floor 50%, a whole
    day each. The direction holds for every one of these seeds: both strategies see the same
    leads and each lead's conversion draw is shared (common random numbers), so the paired
    difference has little noise; over seeds 1..20 predictive led by +14 to +46 conversions (of
    about 270). The expected conversions (sums of the true probabilities, no coin flips) agree."""
    for seed in (1, 2, 3, 4, 5):
        report = simulate(default_scenario(seed=seed, floor_pct=50), ("round_robin", "predictive"))
        rr, pr = report.result("round_robin"), report.result("predictive")
        assert pr.floor_pct == rr.floor_pct == 50
        assert pr.conversions > rr.conversions, (seed, rr.conversions, pr.conversions)
        assert pr.expected_conversions > rr.expected_conversions, seed
        assert pr.assigned == rr.assigned  # same leads worked: better agents, not more leads


def test_the_products_own_decisions_are_what_runs(monkeypatch):
    calls: dict[str, int] = {}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(engine, "order_agents", counting("rank", engine.order_agents))
    monkeypatch.setattr(engine, "rank_bids", counting("auction", engine.rank_bids))
    monkeypatch.setattr(engine, "evaluate_team", counting("eligibility", engine.evaluate_team))
    monkeypatch.setattr(engine, "strategy_for", counting("hybrid", engine.strategy_for))
    report = simulate(short(), ("predictive", "hybrid"))
    assert min(calls.values()) > 0 and set(calls) == {"rank", "auction", "eligibility", "hybrid"}
    assert calls["rank"] >= report.result("predictive").assigned


def test_hybrid_switches_strategy_by_the_hour():
    """Round-robin at weekday peak (10:00-16:00 team time), predictive otherwise."""
    r = simulate(default_scenario(seed=1, leads_per_day=3000), ("hybrid",)).result("hybrid")
    assert set(r.hybrid_mix) == {"round_robin", "predictive"}
    assert sum(r.hybrid_mix.values()) == r.assigned


def test_cli_prints_the_table_side_by_side_and_writes_json(tmp_path, capsys):
    out, scenario = tmp_path / "sim.json", tmp_path / "scenario.json"
    argv = ["simulate", "--start-hour", "9", "--hours", "2", "--leads-per-day", "1500",
            "--agents", "6", "--strategies", "all", "--seed", "3"]  # fmt: skip
    assert cli.main([*argv, "--json", str(out), "--write-scenario", str(scenario)]) == 0
    text = capsys.readouterr().out
    for name in ALL:
        assert name in text
    assert "predictive vs round_robin:" in text and "first response p50 / p90" in text
    report = msgspec.json.decode(out.read_bytes(), type=Report)
    assert [r.strategy for r in report.results] == list(ALL)
    # The written scenario runs again to the same figures.
    again = tmp_path / "again.json"
    assert cli.main(["simulate", "--scenario", str(scenario), "--strategies", "all",
                     "--json", str(again)]) == 0  # fmt: skip
    capsys.readouterr()
    assert without_timings(msgspec.json.decode(again.read_bytes(), type=Report)) == without_timings(
        report
    )


def test_score_tiers_send_high_leads_to_senior_agents_first():
    """Leads scoring 70+ to tier 1 (here: the agents whose hidden rate is 20% or more) first:
    round-robin with the tier converts more than without."""
    from exchange.teams.hybrid import ScoreTier

    plain = default_scenario(seed=1)
    senior = tuple(msgspec.structs.replace(a, tier=1 if a.rate >= 0.2 else 2) for a in plain.agents)
    tiered = msgspec.structs.replace(
        plain, agents=senior, score_tiers=(ScoreTier(min_score=70, tiers=frozenset({1})),)
    )
    without = simulate(plain, ("round_robin",)).result("round_robin")
    with_tiers = simulate(tiered, ("round_robin",)).result("round_robin")
    assert with_tiers.expected_conversions > without.expected_conversions


def run_offers(scenario, strategy):
    """The run itself (its owners and what is left in flight), then its report."""
    leads = engine.generate_leads(scenario)
    run = engine._Run(scenario, strategy, leads)
    run.run(None)
    return run, engine.run_strategy(scenario, strategy, leads)


@pytest.mark.parametrize("strategy", OFFERS)
def test_offer_strategies_assign_every_lead_once_and_money_adds_up(strategy):
    """Agents answer offers (accept, decline, or let them expire); each lead ends owned by one
    agent or unassigned, none is left on offer or in the queue, and the money adds up."""
    run, r = run_offers(default_scenario(seed=3, leads_per_day=3000), strategy)
    assert r.assigned > 0 and r.offers >= r.assigned
    assert r.offers_declined > 0  # accept_prob 0.8 by default: some decline
    # The engine raises if a lead is owned twice; every lead the team got is owned or unassigned.
    assert len(run.owner) == r.assigned and r.assigned + r.unassigned == r.to_team
    assert not run.offering and not run.waiting and not run.answers
    assert sum(a.leads for a in r.agents) == r.assigned
    assert r.revenue_minor == r.payouts_minor + r.margin_minor
    assert r.sold + r.to_team == r.leads
    # The time to an owner counts in the first response (from the lead reaching the team).
    assert r.offer_wait_p50_seconds > 0


def test_offer_strategies_are_deterministic():
    first = simulate(short(seed=4), OFFERS)
    assert without_timings(first) == without_timings(simulate(short(seed=4), OFFERS))
    assert without_timings(first) != without_timings(simulate(short(seed=5), OFFERS))


def test_an_agent_who_never_accepts_never_owns_a_lead_under_sequential():
    plain = short(seed=2)
    shy = plain.agents[0].id
    agents = tuple(
        msgspec.structs.replace(a, accept_prob=0.0) if a.id == shy else a for a in plain.agents
    )
    scenario = msgspec.structs.replace(plain, agents=agents)
    run, r = run_offers(scenario, "sequential")
    assert r.assigned > 0 and shy not in run.owner.values()
    assert next(a for a in r.agents if a.id == shy).leads == 0
    # ...though it was offered leads (and declined them): it is in the round-robin order.
    assert any(agent == shy for _, agent in run.tries)


def test_a_hybrid_rule_may_pick_an_offer_strategy():
    from exchange.teams.hybrid import StrategyRule

    scenario = msgspec.structs.replace(
        short(seed=1), hybrid_rules=(StrategyRule(strategy="parallel", min_score=60),)
    )
    r = simulate(scenario, ("hybrid",)).result("hybrid")
    assert set(r.hybrid_mix) == {"parallel", "predictive"} and r.offers > 0
    assert sum(r.hybrid_mix.values()) == r.assigned
