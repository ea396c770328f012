"""The no-loss post walk, driven step by step with scripted outcomes."""

from __future__ import annotations

import pytest

from exchange.auction import (
    Bid,
    Done,
    FixedMargin,
    Mode,
    PostAction,
    PostOutcome,
    RankedAuction,
    Sale,
    WalkState,
    next_post,
    rank,
    record,
    start_walk,
)

OK, NO, ERR = PostOutcome.ACCEPTED, PostOutcome.REJECTED, PostOutcome.ERROR
MARGIN = FixedMargin(amount_minor=100)


def auction(
    *bids: tuple[str, str, int, int], mode: Mode = Mode.FREE_PICK, max_sells: int = 1
) -> RankedAuction:
    """bids as (campaign_id, buyer_id, amount_minor, tier); margin is a flat 100."""
    return rank(
        [Bid(campaign_id=c, buyer_id=b, amount_minor=a, tier=t) for c, b, a, t in bids],
        mode,
        0,
        lambda _: MARGIN,
        max_sells=max_sells,
    )


def drive(state: WalkState, outcomes: dict[str, PostOutcome]) -> tuple[list[str], Done]:
    """Post until done; returns the campaigns posted to, in order, and the result."""
    posted: list[str] = []
    while isinstance(action := next_post(state), PostAction):
        posted.append(action.candidate.campaign_id)
        state = record(state, action.candidate.campaign_id, outcomes[action.candidate.campaign_id])
    return posted, action


def reasons(done: Done) -> dict[str, str]:
    return {r.campaign_id: r.reason.value for r in done.results}


def test_the_winner_accepts() -> None:
    ranked = auction(("a", "A", 1_000, 1), ("b", "B", 900, 1))
    posted, done = drive(start_walk(ranked, [900]), {"a": OK})
    assert posted == ["a"]
    assert done.sales == (
        Sale(campaign_id="a", buyer_id="A", price_minor=1_000, payout_minor=900, margin_minor=100),
    )
    assert reasons(done) == {"a": "sold", "b": "not_better_than_winner"}
    assert done.unfilled_promises_minor == ()


def test_fallback_only_while_the_payout_covers_the_promise() -> None:
    # promise 900 (a's payout); b pays out 900 (covers), c pays out 850 (would be a loss)
    ranked = auction(("a", "A", 1_000, 1), ("b", "B", 1_000, 1), ("c", "C", 950, 1))
    posted, done = drive(start_walk(ranked, [900]), {"a": NO, "b": ERR, "c": OK})
    assert posted == ["a", "b"]
    assert done.sales == ()
    assert reasons(done) == {"a": "post_rejected", "b": "post_error", "c": "not_better_than_winner"}
    assert done.unfilled_promises_minor == (900,)


def test_a_higher_fallback_pays_the_promise_and_the_surplus_is_margin() -> None:
    # the promise (850) is below b's payout (890): the supplier gets exactly what it was
    # promised and the exchange keeps the difference as margin
    ranked = auction(("a", "A", 1_000, 1), ("b", "B", 990, 1))
    posted, done = drive(start_walk(ranked, [850]), {"a": NO, "b": OK})
    assert posted == ["a", "b"]
    assert done.sales == (
        Sale(campaign_id="b", buyer_id="B", price_minor=990, payout_minor=850, margin_minor=140),
    )


def test_a_lower_tier_is_tried_only_when_the_higher_tier_does_not_sell() -> None:
    ranked = auction(
        ("t1", "A", 1_000, 1), ("t2a", "B", 1_500, 2), ("t2b", "C", 1_200, 2), mode=Mode.TIERS
    )
    posted, done = drive(start_walk(ranked, [900]), {"t1": NO, "t2a": NO, "t2b": OK})
    assert posted == ["t1", "t2a", "t2b"]
    assert [s.campaign_id for s in done.sales] == ["t2b"]
    posted, done = drive(start_walk(ranked, [900]), {"t1": OK})
    assert posted == ["t1"]
    assert reasons(done) == {
        "t1": "sold",
        "t2a": "not_better_than_winner",
        "t2b": "not_better_than_winner",
    }


def test_shared_fills_each_promise_from_distinct_buyers() -> None:
    ranked = auction(
        ("a", "A", 1_000, 1),
        ("b", "B", 900, 1),
        ("c", "C", 850, 1),
        ("d", "D", 800, 1),
        max_sells=2,
    )
    # payouts 900, 800, 750, 700; promises 900 (a) and 800 (b); a rejects
    posted, done = drive(start_walk(ranked, [900, 800]), {"a": NO, "b": OK, "c": OK, "d": OK})
    assert posted == ["a", "b"]  # b fills 800; c and d pay out 750 and 700: below 900
    assert [(s.campaign_id, s.payout_minor) for s in done.sales] == [("b", 800)]
    assert done.unfilled_promises_minor == (900,)


def test_shared_accepted_post_fills_the_largest_promise_it_covers() -> None:
    ranked = auction(("a", "A", 1_000, 1), ("b", "B", 950, 1), ("c", "C", 700, 1), max_sells=3)
    # payouts 900, 850, 600; promises 600, 850 and 900 in any order
    state = start_walk(ranked, [600, 900, 850])
    action = next_post(state)
    assert isinstance(action, PostAction) and action.promised_payout_minor == 900
    posted, done = drive(state, {"a": NO, "b": OK, "c": OK})
    assert posted == ["a", "b", "c"]
    sold = [(s.campaign_id, s.payout_minor, s.margin_minor) for s in done.sales]
    assert sold == [("b", 850, 100), ("c", 600, 100)]
    assert done.unfilled_promises_minor == (900,)


def test_shared_in_tiers_does_not_fill_from_a_lower_tier_after_a_sale() -> None:
    ranked = auction(
        ("a", "A", 1_000, 1), ("b", "B", 900, 1), ("c", "C", 2_000, 2), mode=Mode.TIERS, max_sells=2
    )
    posted, done = drive(start_walk(ranked, [900, 800]), {"a": OK, "b": NO, "c": OK})
    assert posted == ["a", "b"]
    assert reasons(done) == {"a": "sold", "b": "post_rejected", "c": "not_better_than_winner"}


def test_exclusive_may_fall_back_to_another_campaign_of_the_same_buyer() -> None:
    ranked = auction(("a1", "A", 1_000, 1), ("a2", "A", 1_000, 1))
    posted, done = drive(start_walk(ranked, [900]), {"a1": NO, "a2": OK})
    assert posted == ["a1", "a2"]
    assert [s.campaign_id for s in done.sales] == ["a2"]


def test_next_post_is_pure_and_record_refuses_anything_but_the_next_post() -> None:
    ranked = auction(("a", "A", 1_000, 1), ("b", "B", 1_000, 1))
    state = start_walk(ranked, [900])
    assert next_post(state) == next_post(state)
    with pytest.raises(ValueError):
        record(state, "b", OK)  # a is next
    done_state = record(state, "a", OK)
    assert isinstance(next_post(done_state), Done)
    with pytest.raises(ValueError):
        record(done_state, "b", OK)


def test_start_walk_checks_the_promises() -> None:
    ranked = auction(("a", "A", 1_000, 1))
    with pytest.raises(ValueError):
        start_walk(ranked, [])
    with pytest.raises(ValueError):
        start_walk(ranked, [900, 900])  # exclusive: one sale
    with pytest.raises(ValueError):
        start_walk(ranked, [-1])


def test_no_candidates_is_done_at_once() -> None:
    done = next_post(start_walk(auction(max_sells=1), [500]))
    assert done == Done(sales=(), results=(), unfilled_promises_minor=(500,))


def test_the_walk_itself_never_sells_twice_to_a_buyer() -> None:
    # rank already keeps one campaign per buyer on a shared lead; the walk does not rely on it
    exclusive = auction(("a1", "A", 1_000, 1), ("a2", "A", 1_000, 1), ("b", "B", 1_000, 1))
    hand_built = RankedAuction(
        mode=Mode.FREE_PICK, max_sells=2, groups=exclusive.groups, dropped=()
    )
    posted, done = drive(start_walk(hand_built, [900, 900]), {"a1": OK, "a2": OK, "b": OK})
    assert posted == ["a1", "b"]
    assert reasons(done) == {"a1": "sold", "a2": "not_better_than_winner", "b": "sold"}
