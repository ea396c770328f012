"""Which strategy a team uses for one lead: hybrid schedules and score tiers.

A team has a base strategy and, optionally, rules that switch it: "round-robin at peak hours,
performance-based off-peak", "predictive for leads scoring 80 or more". Rules are tried in
order and the first that matches the lead's time and score wins; none matching means the base
strategy. A rule's hours are a weekly ``Schedule`` read on the *team's* wall clock (its IANA
zone), so 09:00-17:00 stays 09:00-17:00 local across a daylight-saving change.

Score tiers say who sees a high-value lead first: a lead scoring at least ``min_score`` goes to
agents of the listed tiers before anyone else (tier 1 = most senior); when none of them is
eligible, the rest of the team is tried.

Pure: the lead's score, the team's rules and ``now`` in; a strategy (and which rule chose it)
out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import msgspec

from exchange.matching.localtime import require_aware
from exchange.matching.schedule import Schedule, is_open, validate_schedule

Strategy = Literal["round_robin", "sequential", "parallel", "performance", "predictive"]
STRATEGIES: tuple[str, ...] = ("round_robin", "sequential", "parallel", "performance", "predictive")
RULES_MAX = 50
TIERS_MAX = 20
TIER_MAX = 10
SCORE_MAX = 100


class StrategyRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Use ``strategy`` when the team's local time is inside ``hours`` (None: any time) and the
    lead's score is within ``min_score``..``max_score`` (None: no bound; an unscored lead only
    matches a rule without score bounds)."""

    strategy: Strategy
    hours: Schedule | None = None  # its timezone is replaced by the team's
    min_score: Annotated[int, msgspec.Meta(ge=0, le=SCORE_MAX)] | None = None
    max_score: Annotated[int, msgspec.Meta(ge=0, le=SCORE_MAX)] | None = None


class ScoreTier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Leads scoring at least ``min_score`` go to agents of ``tiers`` first."""

    min_score: Annotated[int, msgspec.Meta(ge=0, le=SCORE_MAX)]
    tiers: Annotated[
        frozenset[Annotated[int, msgspec.Meta(ge=1, le=TIER_MAX)]], msgspec.Meta(min_length=1)
    ]


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    strategy: Strategy
    rule: int | None  # index of the rule that chose it; None: the team's base strategy


def _in_hours(rule: StrategyRule, timezone: str, now: dt.datetime) -> bool:
    if rule.hours is None:
        return True
    hours = msgspec.structs.replace(rule.hours, timezone=timezone)
    return is_open(hours, now)


def _in_score(rule: StrategyRule, score: int | None) -> bool:
    if rule.min_score is None and rule.max_score is None:
        return True
    if score is None:
        return False
    low = 0 if rule.min_score is None else rule.min_score
    high = SCORE_MAX if rule.max_score is None else rule.max_score
    return low <= score <= high


def strategy_for(
    base: Strategy,
    rules: Sequence[StrategyRule],
    timezone: str,
    now: dt.datetime,
    score: int | None,
) -> Choice:
    """The first rule matching the lead's time and score, else the base strategy."""
    now = require_aware(now)
    for i, rule in enumerate(rules):
        if _in_score(rule, score) and _in_hours(rule, timezone, now):
            return Choice(strategy=rule.strategy, rule=i)
    return Choice(strategy=base, rule=None)


def preferred_tiers(tiers: Sequence[ScoreTier], score: int | None) -> frozenset[int]:
    """The agent tiers a lead with ``score`` goes to first (empty: no preference). The highest
    threshold the score reaches decides."""
    if score is None:
        return frozenset()
    reached = [t for t in tiers if score >= t.min_score]
    if not reached:
        return frozenset()
    return max(reached, key=lambda t: t.min_score).tiers


def tiered(order: Sequence[str], tier_of: Mapping[str, int], tiers: frozenset[int]) -> list[str]:
    """``order`` with the agents of ``tiers`` first (each group keeps its order)."""
    if not tiers:
        return list(order)
    first = [a for a in order if tier_of.get(a, 1) in tiers]
    return first + [a for a in order if tier_of.get(a, 1) not in tiers]


def validate_rules(rules: Sequence[StrategyRule], *, path: str = "rules") -> list[tuple[str, str]]:
    """Problems as (field path, reason): empty when the rules are usable."""
    problems: list[tuple[str, str]] = []
    for i, rule in enumerate(rules):
        where = f"{path}[{i}]"
        if rule.min_score is not None and rule.max_score is not None:
            if rule.min_score > rule.max_score:
                problems.append((f"{where}.max_score", "must be at least min_score"))
        if rule.hours is not None:
            problems.extend(validate_schedule(rule.hours, path=f"{where}.hours"))
    return problems
