"""The scenario of a simulated market day: suppliers, advertisers, agents and their hidden truth.

Everything the simulator needs is plain data here (msgspec Structs, so a scenario can be written
to and read from JSON). What the exchange's code never sees is marked *hidden*: a lead's
quality, an agent's true conversion rate. The strategies only see what the product would see:
scores, segments and the outcomes reported so far.

Money is integer minor units; rates are probabilities 0..1; durations are minutes (means of
exponential draws) or hours since the start of the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from exchange.auction.margin import MarginRule, PercentMargin
from exchange.auction.ranking import Mode
from exchange.matching.localtime import zone
from exchange.matching.schedule import WEEKDAYS, Interval, Schedule
from exchange.teams.hybrid import ScoreTier, Strategy, StrategyRule
from exchange.teams.performance import FLOOR_PCT_DEFAULT, PRIOR_STRENGTH_DEFAULT

Segment = Literal["high", "normal", "low"]
SEGMENTS: tuple[Segment, ...] = ("high", "normal", "low")
# A lead's segment comes from its score (a priority band): what the product can see of quality.
HIGH_SCORE_MIN = 70
NORMAL_SCORE_MIN = 40

# The strategies the simulator runs. "hybrid" is a team whose strategy switches by the rules in
# ``Scenario.hybrid_rules`` (``exchange.teams.hybrid.strategy_for``); "sequential" and
# "parallel" offer the lead and wait for the agents' answers.
SimStrategy = Literal[
    "round_robin", "performance", "predictive", "hybrid", "sequential", "parallel"
]
SIM_STRATEGIES: tuple[SimStrategy, ...] = (
    "round_robin", "performance", "predictive", "hybrid", "sequential", "parallel",
)  # fmt: skip
DEFAULT_STRATEGIES: tuple[SimStrategy, ...] = ("round_robin", "performance", "predictive")

Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
Minutes = Annotated[float, msgspec.Meta(gt=0)]
Minor = Annotated[int, msgspec.Meta(ge=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]


class Supplier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    share: Annotated[float, msgspec.Meta(gt=0)] = 1.0  # relative share of the traffic
    quality: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.5  # hidden: mean lead quality
    min_payout_minor: Minor = 0  # the supplier's floor: a bid paying less does not sell
    margin: MarginRule | None = None  # the supplier's margin override (payout terms)


class Advertiser(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A buyer with one campaign. Its valuation of a lead (its bid) lies in ``bid_min_minor``..
    ``bid_max_minor``, higher for better leads; it bids on a share ``bid_rate`` of the leads
    scoring at least ``min_score``, while its daily budget and cap last."""

    id: str
    bid_min_minor: Annotated[int, msgspec.Meta(ge=1)]
    bid_max_minor: Annotated[int, msgspec.Meta(ge=1)]
    daily_budget_minor: Minor
    daily_cap: Minor | None = None
    bid_rate: Rate = 1.0
    min_score: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    floor_minor: Minor = 0  # the campaign's own minimum price
    # Even pacing: spend (and buy) no faster than the day's traffic arrives, so the budget lasts
    # the day instead of running out by mid-afternoon.
    pacing: bool = True


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An agent of the internal team. ``rate`` is hidden: its true conversion probability on a
    normal lead; on other segments it is ``rate * Scenario.segment_multipliers[segment]``
    unless ``segment_rates`` gives that segment's probability outright (a specialist)."""

    id: str
    rate: Rate
    segment_rates: dict[Segment, Rate] = {}
    timezone: str | None = None  # None: the team's
    hours: tuple[int, int] | None = None  # local minutes [start, end) every day; None: any time
    away: tuple[tuple[float, float], ...] = ()  # (from, to) in hours since the run's start
    concurrent_cap: Minor | None = 4
    daily_cap: Minor | None = None
    weight: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    tier: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    response_minutes: Minutes = 4.0  # mean delay from assignment to first contact
    handling_minutes: Minutes = 15.0  # mean time the lead occupies one of its concurrent slots
    # Hidden: its answers to offers (sequential, parallel). It accepts an offer with probability
    # ``accept_prob`` (declines otherwise), answering after answer_min_seconds plus an
    # exponential delay of mean answer_mean_seconds; an answer later than the team's offer
    # timeout never comes (the offer expires).
    accept_prob: Rate = 0.8
    answer_min_seconds: Seconds = 5.0
    answer_mean_seconds: Annotated[float, msgspec.Meta(gt=0)] = 40.0

    def hours_schedule(self, team_timezone: str) -> Schedule | None:
        if self.hours is None:
            return None
        start, end = self.hours
        day = (Interval(start, end),)
        return Schedule(timezone=self.timezone or team_timezone, days={d: day for d in WEEKDAYS})


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seed: int = 1
    start: dt.datetime = dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC)  # Mon 00:00 New York
    hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 31)] = 24.0
    leads_per_day: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 5000
    timezone: str = "America/New_York"  # the team's: arrivals curve, hybrid hours, window
    # Relative arrival rate per hour of the team's local day (any scale; normalised).
    daily_curve: Annotated[tuple[float, ...], msgspec.Meta(min_length=24, max_length=24)] = (
        0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.7, 1.8,
        1.7, 1.7, 1.6, 1.5, 1.4, 1.3, 1.2, 1.0, 0.8, 0.6, 0.4, 0.3,
    )  # fmt: skip
    suppliers: Annotated[tuple[Supplier, ...], msgspec.Meta(min_length=1)]
    advertisers: tuple[Advertiser, ...]  # none: every lead goes to the team
    agents: Annotated[tuple[AgentSpec, ...], msgspec.Meta(min_length=1)]
    margin: MarginRule = PercentMargin(bps=2000)
    auction_mode: Mode = Mode.FREE_PICK
    currency: str = "USD"
    segment_multipliers: dict[Segment, Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: {"high": 1.5, "normal": 1.0, "low": 0.5}
    )
    floor_pct: Annotated[int, msgspec.Meta(ge=0, le=100)] = FLOOR_PCT_DEFAULT
    prior_strength: Annotated[int, msgspec.Meta(ge=0)] = PRIOR_STRENGTH_DEFAULT
    outcome_minutes: Minutes = 90.0  # mean delay from the end of handling to the reported outcome
    queue_max_age_minutes: Minutes = 240.0  # a lead waiting longer leaves the queue unassigned
    sweep_minutes: Minutes = 5.0  # the periodic queue sweep while leads wait
    won_value_min_minor: Minor = 50_000  # what a converted lead is worth to the team
    won_value_max_minor: Minor = 300_000
    hybrid_base: Strategy = "predictive"
    hybrid_rules: tuple[StrategyRule, ...] = ()
    score_tiers: tuple[ScoreTier, ...] = ()  # high scores to these agent tiers first; () = none
    # Offer strategies, as the team's settings (TeamConfig offer_timeout_s, max_rounds,
    # parallel_k); a lead no one takes goes back to the queue.
    offer_timeout_seconds: Annotated[float, msgspec.Meta(ge=5, le=86_400)] = 120.0
    max_rounds: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    parallel_k: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None  # None: every eligible


def segment_of(score: int) -> Segment:
    if score >= HIGH_SCORE_MIN:
        return "high"
    if score >= NORMAL_SCORE_MIN:
        return "normal"
    return "low"


def peak_rules(timezone: str) -> tuple[StrategyRule, ...]:
    """The default hybrid schedule: round-robin at weekday peak hours (10:00-16:00 team time),
    whatever ``hybrid_base`` says (predictive) the rest of the time."""
    peak = (Interval(600, 960),)
    hours = Schedule(timezone=timezone, days={d: peak for d in WEEKDAYS[:5]})
    return (StrategyRule(strategy="round_robin", hours=hours),)


def default_scenario(
    *,
    seed: int = 1,
    agents: int = 20,
    leads_per_day: int = 5000,
    hours: float = 24.0,
    start_hour: int = 0,
    floor_pct: int = FLOOR_PCT_DEFAULT,
    rate_min: float = 0.05,
    rate_max: float = 0.30,
    always_available: bool = False,
) -> Scenario:
    """A market sized for ``leads_per_day``: five suppliers, six advertisers paced to spend
    their budgets over the whole day (so the team gets unsold leads all day), and ``agents``
    agents whose hidden rates spread evenly over ``rate_min``..``rate_max`` (shuffled by the
    seed, so the best agent is not always the first id). Unless ``always_available``, agents
    work 08:00-22:00 team time, two in Chicago, and every fifth takes a two-hour break. The run
    starts at ``start_hour`` on a Monday, team time."""
    scale = leads_per_day / 5000
    suppliers = (
        Supplier(id="s-search", share=3, quality=0.62, min_payout_minor=1500),
        Supplier(id="s-social", share=3, quality=0.45, min_payout_minor=800),
        Supplier(id="s-aggregator", share=2, quality=0.50, min_payout_minor=1000),
        Supplier(id="s-callcenter", share=1, quality=0.70, min_payout_minor=2500),
        Supplier(id="s-longtail", share=1, quality=0.35, min_payout_minor=500),
    )
    adv = [
        ("a-national", 2500, 6500, 4_000_000, 1000, 0.9, 40),
        ("a-regional", 2000, 5000, 2_500_000, 700, 0.8, 30),
        ("a-premium", 4000, 9000, 3_000_000, 400, 0.7, 70),
        ("a-budget", 800, 2500, 600_000, 600, 0.9, 0),
        ("a-aggregator", 1500, 4000, 1_500_000, 800, 0.6, 20),
        ("a-local", 1800, 4500, 500_000, 150, 0.5, 50),
    ]
    advertisers = tuple(
        Advertiser(id=i, bid_min_minor=lo, bid_max_minor=hi,
                   daily_budget_minor=int(budget * scale), daily_cap=max(1, int(cap * scale)),
                   bid_rate=rate, min_score=score)
        for i, lo, hi, budget, cap, rate, score in adv
    )  # fmt: skip
    import random

    rng = random.Random(f"{seed}:scenario")
    step = (rate_max - rate_min) / max(agents - 1, 1)
    rates = [rate_min + i * step for i in range(agents)]
    rng.shuffle(rates)
    specs = []
    for i, rate in enumerate(rates):
        n = i + 1
        segment_rates: dict[Segment, float] = {}
        if n % 7 == 0:  # a specialist: great on high-score leads, poor on low ones
            segment_rates = {"high": min(1.0, rate * 2.2), "low": rate * 0.2}
        if always_available:
            specs.append(AgentSpec(id=f"agent-{n:02d}", rate=round(rate, 4),
                                   segment_rates=segment_rates, concurrent_cap=6))  # fmt: skip
            continue
        chicago = n % 10 == 3
        specs.append(
            AgentSpec(
                id=f"agent-{n:02d}", rate=round(rate, 4), segment_rates=segment_rates,
                timezone="America/Chicago" if chicago else None,
                hours=(7 * 60, 21 * 60) if chicago else (8 * 60, 22 * 60),
                away=((12.0 + (n % 3), 14.0 + (n % 3)),) if n % 5 == 0 else (),
            )
        )  # fmt: skip
    midnight = dt.datetime(2026, 11, 23, tzinfo=zone("America/New_York"))  # a Monday
    start = (midnight + dt.timedelta(hours=start_hour)).astimezone(dt.UTC)
    return Scenario(
        seed=seed, start=start, hours=hours, leads_per_day=leads_per_day, suppliers=suppliers,
        advertisers=advertisers, agents=tuple(specs), floor_pct=floor_pct,
        hybrid_rules=peak_rules("America/New_York"),
    )  # fmt: skip
