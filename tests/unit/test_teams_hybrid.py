"""Hybrid schedules and score tiers: which strategy a team uses for one lead (pure)."""

from __future__ import annotations

import datetime as dt

import msgspec

from exchange.teams.hybrid import (
    ScoreTier,
    StrategyRule,
    preferred_tiers,
    strategy_for,
    tiered,
    validate_rules,
)

NY = "America/New_York"
UTC = dt.UTC
PEAK = msgspec.convert(
    {"strategy": "round_robin",
     "hours": {"timezone": "UTC", "days": {d: [{"start": 540, "end": 1020}]
                                           for d in ("mon", "tue", "wed", "thu", "fri")}}},
    StrategyRule,
)  # fmt: skip
HOT = StrategyRule(strategy="predictive", min_score=80)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_peak_hours_switch_the_strategy_on_the_teams_wall_clock_across_dst():
    # New York springs forward on Sunday 8 March 2026: 09:30 local is 14:30 UTC before, 13:30
    # after. The same UTC instant 13:30 is off-peak on Friday and peak on Monday.
    def pick(when: dt.datetime) -> str:
        return strategy_for("performance", [PEAK], NY, when, None).strategy

    assert pick(at(2026, 3, 6, 14, 30)) == "round_robin"  # Fri 09:30 EST
    assert pick(at(2026, 3, 6, 13, 30)) == "performance"  # Fri 08:30 EST
    assert pick(at(2026, 3, 9, 13, 30)) == "round_robin"  # Mon 09:30 EDT
    assert pick(at(2026, 3, 9, 21, 0)) == "performance"  # Mon 17:00 EDT: closed at the end
    assert pick(at(2026, 3, 7, 15, 0)) == "performance"  # Saturday
    # And back in November (fall back on 1 November 2026): 09:30 EST is 14:30 UTC again.
    assert pick(at(2026, 11, 2, 13, 30)) == "performance"
    assert pick(at(2026, 11, 2, 14, 30)) == "round_robin"


def test_the_first_matching_rule_wins_and_an_unscored_lead_skips_score_rules():
    rules = [HOT, PEAK]
    peak = at(2026, 11, 24, 15)  # Tue 10:00 in New York
    assert strategy_for("sequential", rules, NY, peak, 91).strategy == "predictive"
    assert strategy_for("sequential", rules, NY, peak, 91).rule == 0
    assert strategy_for("sequential", rules, NY, peak, 40).strategy == "round_robin"
    assert strategy_for("sequential", rules, NY, peak, None).rule == 1
    night = at(2026, 11, 24, 5)
    choice = strategy_for("sequential", rules, NY, night, 40)
    assert (choice.strategy, choice.rule) == ("sequential", None)


def test_score_bounds_are_inclusive():
    band = StrategyRule(strategy="parallel", min_score=50, max_score=79)
    now = at(2026, 11, 24, 15)
    assert [strategy_for("round_robin", [band], NY, now, s).strategy for s in (49, 50, 79, 80)] == [
        "round_robin", "parallel", "parallel", "round_robin"]  # fmt: skip


def test_high_scores_go_to_senior_tiers_first():
    tiers = [ScoreTier(min_score=80, tiers=frozenset({1})), ScoreTier(min_score=50, tiers=frozenset({1, 2}))]
    assert preferred_tiers(tiers, 95) == {1}
    assert preferred_tiers(tiers, 60) == {1, 2}
    assert preferred_tiers(tiers, 10) == frozenset()
    assert preferred_tiers(tiers, None) == frozenset()
    order = ["junior", "senior", "mid", "senior2"]
    tier_of = {"junior": 3, "senior": 1, "mid": 2, "senior2": 1}
    assert tiered(order, tier_of, frozenset({1})) == ["senior", "senior2", "junior", "mid"]
    assert tiered(order, tier_of, frozenset()) == order


def test_rules_are_validated_with_paths():
    bad = [StrategyRule(strategy="parallel", min_score=90, max_score=10),
           msgspec.convert({"strategy": "round_robin", "hours": {"timezone": "UTC", "days": {
               "mon": [{"start": 600, "end": 600}]}}}, StrategyRule)]  # fmt: skip
    problems = dict(validate_rules(bad))
    assert "rules[0].max_score" in problems
    assert "rules[1].hours.days.mon[0]" in problems
    assert validate_rules([PEAK, HOT]) == []
