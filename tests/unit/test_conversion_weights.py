"""Conversion weights of teams' campaigns (exchange.auction.conversion) and how they order bids
(exchange.auction.ranking): the weight moves the ranking, never the price."""

from __future__ import annotations

import pytest

from exchange.auction import conversion
from exchange.auction.margin import MarginRule, PercentMargin
from exchange.auction.ranking import (
    MAX_WEIGHT_BPS,
    MIN_WEIGHT_BPS,
    NEUTRAL_WEIGHT_BPS,
    Bid,
    Mode,
    adjusted,
    rank,
)
from exchange.scoring.rules import Counts

NO_MARGIN = PercentMargin(bps=0)


def margin(_: str) -> MarginRule:
    return NO_MARGIN


def test_no_outcomes_anywhere_is_neutral():
    found = conversion.weights({}, {"a", "b"}, "*")
    assert {w.weight_bps for w in found.values()} == {NEUTRAL_WEIGHT_BPS}
    assert found["a"].note() == "conversion 10% vs 10% (no outcomes yet, *): x1.00"


def test_the_better_converting_campaign_weighs_more_smoothed_toward_the_base():
    counts = {"a": {"*": Counts(100, 30)}, "b": {"*": Counts(100, 10)}}
    found = conversion.weights(counts, {"a", "b"}, "*")
    base = 40 / 200
    # Posterior means with 10 pseudo-leads at the base rate: (10*0.2 + 30) / 110 and (2 + 10)/110.
    assert found["a"].rate == pytest.approx(32 / 110) and found["b"].rate == pytest.approx(12 / 110)
    assert found["a"].weight_bps == round(32 / 110 / base * 10_000)  # 14545
    assert found["b"].weight_bps == round(12 / 110 / base * 10_000)  # 5455
    assert found["a"].note() == "conversion 29% vs 20% (30/100 won, *): x1.45"


def test_little_data_moves_little_and_the_segment_is_looked_up():
    counts = {"a": {"*": Counts(3, 2), "priority=high": Counts(3, 3)}, "b": {"*": Counts(100, 20)}}
    anywhere = conversion.weights(counts, {"a", "b"}, "*")
    assert 10_000 < anywhere["a"].weight_bps < 20_000  # 2 of 3 is not 67 % yet
    high = conversion.weights(counts, {"a", "b"}, conversion.segment_for("high"))
    # Only a has outcomes in the segment: the base is its own, b gets the neutral prior.
    assert high["b"].weight_bps == NEUTRAL_WEIGHT_BPS and high["a"].segment == "priority=high"
    assert conversion.segment_for(None) == "*"


def test_weight_bounds_and_the_fairness_floor():
    assert (
        conversion.weight_bps(0.0, 0.2)
        == NEUTRAL_WEIGHT_BPS * conversion.CONVERSION_FLOOR_PCT // 100
    )
    assert conversion.weight_bps(0.0, 0.2, floor_pct=0) == MIN_WEIGHT_BPS
    assert conversion.weight_bps(0.9, 0.01) == MAX_WEIGHT_BPS
    assert conversion.weight_bps(0.2, 0.2) == NEUTRAL_WEIGHT_BPS
    with pytest.raises(ValueError):
        conversion.weight_bps(0.1, 0.1, floor_pct=101)
    # A base without a win yet stays positive, nothing divides by zero, equals weigh alike.
    found = conversion.weights(
        {"a": {"*": Counts(5, 0)}, "b": {"*": Counts(5, 0)}}, {"a", "b"}, "*"
    )
    assert found["a"].weight_bps == found["b"].weight_bps >= MIN_WEIGHT_BPS


def bid(campaign: str, amount: int = 500, **extra) -> Bid:
    return Bid(campaign_id=campaign, buyer_id=f"buyer-{campaign}", amount_minor=amount, **extra)


def test_a_higher_converting_campaign_at_the_same_price_ranks_first_and_pays_its_price():
    bids = [bid("a", weight_bps=8_000), bid("b", weight_bps=12_000)]
    ranked = rank(bids, Mode.FREE_PICK, 0, margin)
    first, second = ranked.candidates()
    assert (first.campaign_id, second.campaign_id) == ("b", "a")
    assert (first.bid.amount_minor, first.payout_minor) == (500, 500)  # the price is the bid
    assert (first.adjusted_minor, second.adjusted_minor) == (600, 400)
    # Neutral: the same bids tie on value and fall to campaign id.
    neutral = rank([bid("a"), bid("b")], Mode.FREE_PICK, 0, margin).candidates()
    assert [c.campaign_id for c in neutral] == ["a", "b"]


def test_weight_and_penalty_combine_in_integers():
    # 500 * 0.8 (penalty) * 1.3 = 520 beats a plain 510; the plain one beats 500 * 1.01 * 1.0.
    bids = [
        bid("p", penalty_bps=2_000, weight_bps=13_000),
        bid("q", 510),
        bid("r", weight_bps=10_100),
    ]
    order = [c.campaign_id for c in rank(bids, Mode.FREE_PICK, 0, margin).candidates()]
    assert order == ["p", "q", "r"]
    assert adjusted(bids[0]) == 520 and adjusted(bids[2]) == 505
    # Exact: no rounding manufactures a tie (505.0 vs 505.05).
    close = [bid("s", 505), bid("t", weight_bps=10_101)]
    assert [c.campaign_id for c in rank(close, Mode.FREE_PICK, 0, margin).candidates()] == [
        "t",
        "s",
    ]


def test_a_weight_out_of_bounds_is_refused():
    for bad in (MIN_WEIGHT_BPS - 1, MAX_WEIGHT_BPS + 1):
        with pytest.raises(ValueError):
            bid("a", weight_bps=bad)


def test_an_agents_outcome_on_a_team_bought_lead_counts_the_campaign_in_its_priority():
    import datetime as dt
    import uuid

    from exchange.outcomes.messages import ReporterKind
    from exchange.outcomes.service import Reporter, stat_keys

    agent, team, vertical, campaign = (uuid.uuid4() for _ in range(4))
    rep = Reporter(
        kind=ReporterKind.AGENT, party_id=agent, lead_id=uuid.uuid4(), vertical_id=vertical,
        source=None, currency="USD", lead_created_at=dt.datetime.now(dt.UTC), team_id=team,
        segment="priority=high", campaign_id=campaign, team_side=True, priority="high",
    )  # fmt: skip
    keys = stat_keys(rep)
    assert keys[-2:] == [(f"campaign:{campaign}", "*"), (f"campaign:{campaign}", "priority=high")]
    assert (f"agent:{agent}", "priority=high") in keys
    # The segment the auction looks the campaign up under is the same string.
    assert conversion.segment_for("high") == "priority=high"


def test_each_campaign_may_set_its_own_floor():
    from exchange.scoring.rules import Counts as C

    counts = {"good": {"*": C(trials=100, successes=60)}, "poor": {"*": C(trials=100, successes=2)}}
    both = frozenset(counts)
    default = conversion.weights(counts, both, "*")
    assert default["poor"].weight_bps == NEUTRAL_WEIGHT_BPS // 2  # the default floor: x0.5
    raised = conversion.weights(counts, both, "*", floors={"poor": 100})
    assert raised["poor"].weight_bps == NEUTRAL_WEIGHT_BPS  # conversion may only raise it
    assert raised["good"].weight_bps == default["good"].weight_bps > NEUTRAL_WEIGHT_BPS
    none = conversion.weights(counts, both, "*", floors={"poor": 0})
    assert none["poor"].weight_bps < NEUTRAL_WEIGHT_BPS // 2
