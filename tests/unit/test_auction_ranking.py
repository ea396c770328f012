"""Ranking: order, tiers, tie-breaks, penalty, floors, shared leads."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.auction import (
    AuctionReason,
    Bid,
    FixedMargin,
    MarginPolicy,
    Mode,
    PercentMargin,
    RankedAuction,
    adjusted,
    rank,
)

NO_MARGIN = FixedMargin(amount_minor=0)
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def flat(_buyer_id: str) -> FixedMargin:
    return NO_MARGIN


def ids(ranked: RankedAuction) -> list[list[str]]:
    return [[c.campaign_id for c in group] for group in ranked.groups]


def reasons(ranked: RankedAuction) -> dict[str, str]:
    return {d.campaign_id: d.reason.value for d in ranked.dropped}


def bid(campaign_id: str, amount: int, **kw: object) -> Bid:
    kw.setdefault("buyer_id", "buyer-" + campaign_id)
    return Bid(campaign_id=campaign_id, amount_minor=amount, **kw)  # type: ignore[arg-type]


def test_free_pick_orders_by_bid_across_tiers() -> None:
    bids = [bid("a", 500, tier=1), bid("b", 900, tier=3), bid("c", 700, tier=2)]
    ranked = rank(bids, Mode.FREE_PICK, 0, flat)
    assert ids(ranked) == [["b", "c", "a"]]
    assert ranked.dropped == ()


def test_tiers_group_by_tier_top_tier_first() -> None:
    bids = [
        bid("a", 500, tier=1),
        bid("b", 900, tier=3),
        bid("c", 700, tier=1),
        bid("d", 800, tier=3),
    ]
    ranked = rank(bids, Mode.TIERS, 0, flat)
    assert ids(ranked) == [["c", "a"], ["b", "d"]]
    assert ranked.candidates()[0].campaign_id == "c"


def test_ties_break_by_least_recently_won_then_campaign_id() -> None:
    bids = [
        bid("a", 500, last_won_at=T0),
        bid("b", 500, last_won_at=T0 - dt.timedelta(hours=1)),
        bid("c", 500),  # never won: first
        bid("e", 500, last_won_at=T0),
        bid("d", 500),
    ]
    assert ids(rank(bids, Mode.FREE_PICK, 0, flat)) == [["c", "d", "b", "a", "e"]]


def test_penalty_changes_the_order_not_the_price() -> None:
    penalised = bid("a", 1_000, penalty_bps=2_500)  # ranks as 750
    ten_percent = PercentMargin(bps=1_000)
    ranked = rank([penalised, bid("b", 800)], Mode.FREE_PICK, 0, lambda _: ten_percent)
    first, second = ranked.candidates()
    assert (first.campaign_id, first.adjusted_minor) == ("b", 800)
    assert (first.payout_minor, first.margin_minor) == (720, 80)
    assert (second.campaign_id, second.adjusted_minor) == ("a", 750)
    # the penalised buyer still pays its whole bid and the supplier's payout comes from it
    assert (second.bid.amount_minor, second.payout_minor, second.margin_minor) == (1_000, 900, 100)
    assert adjusted(penalised) == 750


def test_penalty_rounding_does_not_make_a_tie() -> None:
    # 1001 at 1 bps ranks as 1000.8999 (shown as 1000); it still beats a never-won 1000
    bids = [bid("a", 1_001, penalty_bps=1, last_won_at=T0), bid("b", 1_000)]
    ranked = rank(bids, Mode.FREE_PICK, 0, flat)
    assert ids(ranked) == [["a", "b"]]
    assert [c.adjusted_minor for c in ranked.candidates()] == [1_000, 1_000]


def test_below_campaign_floor_and_supplier_minimum_are_dropped() -> None:
    bids = [
        bid("low", 400, floor_minor=500),
        bid("ok", 500, floor_minor=500),
        bid("zero", 0),
        bid("thin", 520),  # payout 520 - 30 = 490 < supplier minimum 491
        bid("enough", 521),  # payout 491
        bid("eaten", 20),  # the margin takes everything: payout 0
    ]
    ranked = rank(bids, Mode.FREE_PICK, 491, lambda _: FixedMargin(amount_minor=30))
    assert ids(ranked) == [["enough"]]
    assert reasons(ranked) == {r: "below_floor" for r in ("eaten", "low", "ok", "thin", "zero")}
    thin = next(d for d in ranked.dropped if d.campaign_id == "thin")
    assert (thin.amount_minor, thin.payout_minor) == (520, 490)


def test_a_zero_payout_is_never_a_sale_even_with_no_supplier_minimum() -> None:
    thirty = FixedMargin(amount_minor=30)
    ranked = rank([bid("a", 30), bid("b", 31)], Mode.FREE_PICK, 0, lambda _: thirty)
    assert ids(ranked) == [["b"]]
    assert reasons(ranked) == {"a": "below_floor"}


def test_buyer_margin_override_is_used_per_bid() -> None:
    policy = MarginPolicy(
        default=PercentMargin(bps=2_000), by_buyer={"vip": PercentMargin(bps=500)}
    )
    bids = [bid("a", 1_000, buyer_id="vip"), bid("b", 1_000, buyer_id="other")]
    ranked = rank(bids, Mode.FREE_PICK, 0, policy.rule_for)
    payouts = {c.campaign_id: c.payout_minor for c in ranked.candidates()}
    assert payouts == {"a": 950, "b": 800}


def test_shared_keeps_one_campaign_per_buyer() -> None:
    bids = [
        bid("a1", 900, buyer_id="A"),
        bid("a2", 950, buyer_id="A"),
        bid("b1", 800, buyer_id="B"),
        bid("x", 990, buyer_id="X", exclusive=True),
    ]
    ranked = rank(bids, Mode.FREE_PICK, 0, flat, max_sells=3)
    assert ids(ranked) == [["a2", "b1"]]
    assert reasons(ranked) == {"a1": "not_better_than_winner", "x": "exclusivity_conflict"}


def test_shared_tiers_keep_the_buyers_campaign_that_comes_first_in_walk_order() -> None:
    bids = [
        bid("a-t2", 990, buyer_id="A", tier=2),
        bid("a-t1", 100, buyer_id="A", tier=1),
        bid("b", 500, tier=2),
    ]
    ranked = rank(bids, Mode.TIERS, 0, flat, max_sells=2)
    assert ids(ranked) == [["a-t1"], ["b"]]
    assert reasons(ranked) == {"a-t2": "not_better_than_winner"}


def test_exclusive_keeps_every_campaign_of_a_buyer_as_fallback() -> None:
    bids = [
        bid("a1", 900, buyer_id="A"),
        bid("a2", 950, buyer_id="A"),
        bid("x", 990, buyer_id="X", exclusive=True),
    ]
    assert ids(rank(bids, Mode.FREE_PICK, 0, flat)) == [["x", "a2", "a1"]]


def test_no_bids_and_bad_input() -> None:
    empty = rank([], Mode.TIERS, 0, flat)
    assert (empty.groups, empty.dropped) == ((), ())
    with pytest.raises(ValueError):
        rank([bid("a", 1), bid("a", 2)], Mode.FREE_PICK, 0, flat)
    with pytest.raises(ValueError):
        rank([bid("a", 1)], Mode.FREE_PICK, 0, flat, max_sells=0)
    for bad in ({"amount_minor": -1}, {"floor_minor": -1}, {"tier": 0}, {"penalty_bps": 10_001}):
        with pytest.raises(ValueError):
            Bid(**{"campaign_id": "a", "buyer_id": "A", "amount_minor": 1, **bad})  # type: ignore


def test_reason_codes_are_the_documented_strings() -> None:
    assert {r.value for r in AuctionReason} == {
        "below_floor",
        "exclusivity_conflict",
        "not_better_than_winner",
        "post_rejected",
        "post_error",
        "sold",
    }


def test_auction_reasons_are_the_documented_codes():
    from exchange.auction.reasons import AuctionReason
    from exchange.reasons import REASONS

    assert {r.value for r in AuctionReason} <= set(REASONS)
