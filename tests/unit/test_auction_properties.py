"""Property tests for the auction: money splits, ranking order, offers and the no-loss walk."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.auction import (
    BPS_PER_WHOLE,
    MIN_PAYOUT_MINOR,
    AuctionReason,
    BandedMargin,
    Bid,
    Candidate,
    Done,
    FixedMargin,
    MarginPolicy,
    MarginRule,
    Mode,
    PercentMargin,
    PostOutcome,
    PriceBand,
    RankedAuction,
    adjusted,
    build_offer,
    next_post,
    payout_for,
    rank,
    record,
    start_walk,
)

SETTINGS = settings(max_examples=150, deadline=None)
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
WIN_TIMES = [None, NOW - dt.timedelta(days=1), NOW - dt.timedelta(hours=1), NOW]

money = st.integers(0, 5_000) | st.sampled_from([500, 1_000])  # the sampled values provoke ties
fixed = st.builds(FixedMargin, amount_minor=st.integers(0, 1_000))
percent = st.builds(
    PercentMargin, bps=st.integers(0, BPS_PER_WHOLE), min_margin_minor=st.integers(0, 300)
)
flat_rule = fixed | percent


@st.composite
def banded(draw: st.DrawFn) -> BandedMargin:
    bounds = sorted(draw(st.sets(st.integers(0, 5_000), max_size=4)))
    rules = draw(st.lists(flat_rule, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    bands = tuple(PriceBand(up_to_minor=b, rule=r) for b, r in zip([*bounds, None], rules))
    return BandedMargin(bands=bands)


any_rule = flat_rule | banded()
BUYERS = ["A", "B", "C", "D", "E"]


@st.composite
def bid_sets(draw: st.DrawFn) -> list[Bid]:
    n = draw(st.integers(0, 10))
    return [
        Bid(
            campaign_id=f"c{i:02d}",
            buyer_id=draw(st.sampled_from(BUYERS)),
            amount_minor=draw(money),
            tier=draw(st.integers(1, 3)),
            floor_minor=draw(st.integers(0, 1_500)),
            last_won_at=draw(st.sampled_from(WIN_TIMES)),
            penalty_bps=draw(st.sampled_from([0, 0, 1, 2_500, 5_000])),
            exclusive=draw(st.booleans()),
        )
        for i in range(n)
    ]


policies = st.builds(
    MarginPolicy,
    default=any_rule,
    by_buyer=st.dictionaries(st.sampled_from(BUYERS), any_rule, max_size=3),
    supplier=st.none() | any_rule,
)
modes = st.sampled_from(list(Mode))
max_sells_st = st.integers(1, 3)
supplier_min = st.integers(0, 1_000)


def exact(c: Candidate | Bid) -> int:
    b = c.bid if isinstance(c, Candidate) else c
    return b.amount_minor * (BPS_PER_WHOLE - b.penalty_bps)


def passes_price_checks(b: Bid, policy: MarginPolicy, min_payout: int) -> bool:
    """An independent statement of the floor rules."""
    payout, _ = payout_for(b.amount_minor, policy.rule_for(b.buyer_id))
    return b.amount_minor >= max(b.floor_minor, 1) and payout >= max(min_payout, MIN_PAYOUT_MINOR)


# --- margins ---


@SETTINGS
@given(bid=st.integers(0, 10**9), rule=any_rule)
def test_payout_plus_margin_is_the_bid(bid: int, rule: MarginRule) -> None:
    payout, margin = payout_for(bid, rule)
    assert payout + margin == bid
    assert 0 <= payout <= bid
    assert 0 <= margin <= bid


@SETTINGS
@given(bid=st.integers(0, 10**9), bps=st.integers(0, BPS_PER_WHOLE))
def test_percent_margin_is_the_share_rounded_up(bid: int, bps: int) -> None:
    _, margin = payout_for(bid, PercentMargin(bps=bps))
    assert margin * BPS_PER_WHOLE >= bid * bps > (margin - 1) * BPS_PER_WHOLE


# --- ranking ---


@SETTINGS
@given(
    bids=bid_sets(),
    mode=modes,
    policy=policies,
    min_payout=supplier_min,
    max_sells=max_sells_st,
    seed=st.integers(),
)
def test_ranking_properties(
    bids: list[Bid], mode: Mode, policy: MarginPolicy, min_payout: int, max_sells: int, seed: int
) -> None:
    ranked = rank(bids, mode, min_payout, policy.rule_for, max_sells=max_sells)
    shuffled = bids[:]
    random.Random(seed).shuffle(shuffled)
    assert rank(shuffled, mode, min_payout, policy.rule_for, max_sells=max_sells) == ranked

    candidates = ranked.candidates()
    reasons = {d.campaign_id: d.reason for d in ranked.dropped}
    # every bid ends up exactly once: in the walk or dropped with one reason
    accounted = [c.campaign_id for c in candidates] + list(reasons)
    assert sorted(accounted) == sorted(b.campaign_id for b in bids)

    shared = max_sells > 1
    priced_ok = {
        b.campaign_id
        for b in bids
        if not (shared and b.exclusive) and passes_price_checks(b, policy, min_payout)
    }
    assert {c.campaign_id for c in candidates} | {
        cid for cid, r in reasons.items() if r is AuctionReason.NOT_BETTER_THAN_WINNER
    } == priced_ok
    for c in candidates:
        rule = policy.rule_for(c.buyer_id)
        assert (c.payout_minor, c.margin_minor) == payout_for(c.bid.amount_minor, rule)
        assert c.adjusted_minor == adjusted(c.bid) <= c.bid.amount_minor
    if shared:
        assert len({c.buyer_id for c in candidates}) == len(candidates)

    if mode is Mode.FREE_PICK:
        assert len(ranked.groups) <= 1
    else:
        tiers = [{c.bid.tier for c in g} for g in ranked.groups]
        assert all(len(t) == 1 for t in tiers)
        assert [min(t) for t in tiers] == sorted(min(t) for t in tiers)

    if candidates:
        # the winner beats every bid that passed the price checks in its tier (free pick: any)
        winner = candidates[0]
        rivals = [
            b
            for b in bids
            if b.campaign_id in priced_ok and (mode is Mode.FREE_PICK or b.tier == winner.bid.tier)
        ]
        assert all(winner.adjusted_minor >= adjusted(b) for b in rivals)
        assert all(exact(winner) >= exact(b) for b in rivals)

    for group in ranked.groups:
        for first, second in zip(group, group[1:]):
            assert exact(first) >= exact(second)
            if exact(first) == exact(second):
                w1, w2 = first.bid.last_won_at, second.bid.last_won_at
                assert w1 is None or (w2 is not None and w1 <= w2)
                if w1 == w2:
                    assert first.campaign_id < second.campaign_id


@SETTINGS
@given(
    bids=bid_sets(), mode=modes, policy=policies, min_payout=supplier_min, max_sells=max_sells_st
)
def test_offer_properties(
    bids: list[Bid], mode: Mode, policy: MarginPolicy, min_payout: int, max_sells: int
) -> None:
    ranked = rank(bids, mode, min_payout, policy.rule_for, max_sells=max_sells)
    offer = build_offer(ranked, NOW)
    if not ranked.groups:
        assert offer is None
        return
    assert offer is not None
    by_id = {c.campaign_id: c for c in ranked.candidates()}
    assert 1 <= len(offer.bids) <= max_sells
    assert len({b.buyer_id for b in offer.bids}) == len(offer.bids)
    assert offer.payout_minor == sum(b.payout_minor for b in offer.bids)
    for b in offer.bids:
        assert min_payout <= b.payout_minor <= by_id[b.campaign_id].bid.amount_minor
    assert offer.bids[0].campaign_id == ranked.candidates()[0].campaign_id


# --- the no-loss walk ---


@SETTINGS
@given(
    bids=bid_sets(),
    mode=modes,
    policy=policies,
    max_sells=max_sells_st,
    data=st.data(),
)
def test_walk_never_sells_below_the_promise(
    bids: list[Bid], mode: Mode, policy: MarginPolicy, max_sells: int, data: st.DataObject
) -> None:
    ranked: RankedAuction = rank(bids, mode, 0, policy.rule_for, max_sells=max_sells)
    offer = build_offer(ranked, NOW)
    # either the offer's own promises or arbitrary ones (a supplier quoted on another basis)
    promises = data.draw(
        st.just(offer.promises()) if offer and data.draw(st.booleans())
        else st.lists(st.integers(0, 5_000), min_size=1, max_size=max_sells)
    )
    outcomes = data.draw(
        st.lists(st.sampled_from(list(PostOutcome)), min_size=len(bids), max_size=len(bids))
    )
    outcome_of = dict(zip((b.campaign_id for b in bids), outcomes))

    group_of = {c.campaign_id: g for g, group in enumerate(ranked.groups) for c in group}
    by_id = {c.campaign_id: c for c in ranked.candidates()}
    state = start_walk(ranked, promises)
    posted: list[str] = []
    for _ in range(len(by_id) + 1):
        action = next_post(state)
        if isinstance(action, Done):
            break
        c = action.candidate
        assert action.promised_payout_minor in state.open_promises_minor
        assert c.payout_minor >= action.promised_payout_minor  # never at a loss
        assert c.campaign_id not in posted
        posted.append(c.campaign_id)
        state = record(state, c.campaign_id, outcome_of[c.campaign_id])
    assert isinstance(action, Done), "the walk must end"
    done = action

    assert len(done.sales) <= len(promises)
    assert len({s.buyer_id for s in done.sales}) == len(done.sales)
    filled = [s.payout_minor for s in done.sales]
    assert Counter(filled + list(done.unfilled_promises_minor)) == Counter(promises)
    for s in done.sales:
        assert outcome_of[s.campaign_id] is PostOutcome.ACCEPTED
        assert s.price_minor == s.payout_minor + s.margin_minor
        assert 0 <= s.payout_minor <= by_id[s.campaign_id].payout_minor <= s.price_minor
    assert [r.campaign_id for r in done.results] == [c.campaign_id for c in ranked.candidates()]
    sold_ids = {r.campaign_id for r in done.results if r.reason is AuctionReason.SOLD}
    assert sold_ids == {s.campaign_id for s in done.sales}

    # sales come from one group, and no group below it was posted to
    sold_groups = {group_of[s.campaign_id] for s in done.sales}
    assert len(sold_groups) <= 1
    if sold_groups:
        assert all(group_of[cid] <= min(sold_groups) for cid in posted)
    # and the walk did not stop early: nothing left that could still have filled a promise
    if done.unfilled_promises_minor:
        sold_buyers = {s.buyer_id for s in done.sales}
        for cid, c in by_id.items():
            below_a_sold_group = bool(sold_groups) and group_of[cid] > min(sold_groups)
            if cid in posted or c.buyer_id in sold_buyers or below_a_sold_group:
                continue
            assert c.payout_minor < min(done.unfilled_promises_minor)
