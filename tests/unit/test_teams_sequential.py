"""Sequential offers: priority order, server-side timeouts, declines, rounds, fallback."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.teams import (
    Fallback,
    FallbackKind,
    FallbackPolicy,
    IllegalTransition,
    Offer,
    OfferStatus,
)
from exchange.teams.sequential import Accepted, Refused, accept, on_decline, on_expire, start

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
TIMEOUT = dt.timedelta(seconds=60)
S = dt.timedelta(seconds=1)
QUEUE = FallbackPolicy(kind=FallbackKind.QUEUE, target="team-1")
ALL = {"a", "b", "c"}


def begin(candidates=("a", "b", "c"), max_rounds=2, eligible_now=None):
    return start("L1", candidates, T0, TIMEOUT, max_rounds, QUEUE, eligible_now)


def test_first_offer_goes_to_the_first_eligible_by_priority():
    state, offer = begin(eligible_now={"b", "c"})
    assert isinstance(offer, Offer)
    assert (offer.agent_id, offer.round, offer.offered_at) == ("b", 1, T0)
    assert offer.expires_at == dt.datetime(2026, 11, 23, 15, 1, tzinfo=UTC)
    assert state.deadline == offer.expires_at
    assert state.current == offer


def test_nobody_eligible_falls_back_at_once():
    state, action = begin(eligible_now=set())
    assert action == Fallback(kind=FallbackKind.QUEUE, target="team-1", reason="nobody_eligible")
    assert state.fell_back == action and state.offers == () and state.deadline is None


def test_declines_and_expiries_walk_the_list_then_wrap_then_fall_back():
    state, offer = begin()
    trail = [(offer.agent_id, offer.round)]
    now = T0
    for event in ("decline", "expire", "decline", "expire", "decline"):
        if event == "decline":
            now += 10 * S
            state, offer = on_decline(state, offer.agent_id, now, ALL)
        else:
            now = offer.expires_at  # the server's timer
            state, offer = on_expire(state, offer.agent_id, now, ALL)
        trail.append((offer.agent_id, offer.round))
    assert trail == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("c", 2)]
    now = offer.expires_at
    state, action = on_expire(state, "c", now, ALL)
    assert action == Fallback(kind=FallbackKind.QUEUE, target="team-1", reason="rounds_exhausted")
    assert [o.status for o in state.offers] == [
        OfferStatus.DECLINED, OfferStatus.EXPIRED, OfferStatus.DECLINED,
        OfferStatus.EXPIRED, OfferStatus.DECLINED, OfferStatus.EXPIRED,
    ]  # fmt: skip
    assert state.done and state.current is None


def test_the_next_offer_starts_its_own_timeout():
    state, _ = begin()
    state, second = on_decline(state, "a", T0 + 25 * S, ALL)
    assert (second.offered_at, second.expires_at) == (T0 + 25 * S, T0 + 85 * S)


def test_eligibility_is_rechecked_at_each_step():
    state, offer = begin(candidates=("a", "b", "c", "d"))
    # b went offline meanwhile: skipped. d came back: still behind c.
    state, offer = on_decline(state, "a", T0 + S, {"a", "c", "d"})
    assert offer.agent_id == "c"
    state, offer = on_decline(state, "c", T0 + 2 * S, {"a", "b", "c", "d"})
    assert offer.agent_id == "b"  # back online, and not yet offered in this round


def test_never_reoffered_within_a_round_even_if_eligible():
    state, _ = begin(max_rounds=1)
    state, _ = on_decline(state, "a", T0 + S, ALL)
    state, _ = on_decline(state, "b", T0 + 2 * S, ALL)
    state, action = on_decline(state, "c", T0 + 3 * S, ALL)
    assert isinstance(action, Fallback) and action.reason == "rounds_exhausted"
    assert [o.agent_id for o in state.offers] == ["a", "b", "c"]


def test_a_new_round_offers_only_to_those_eligible_now():
    state, _ = begin(max_rounds=3)
    for agent in "abc":
        state, offer = on_decline(state, agent, T0 + S, ALL)
    assert (offer.agent_id, offer.round) == ("a", 2)
    state, offer = on_decline(state, "a", T0 + 2 * S, {"a", "c"})
    assert (offer.agent_id, offer.round) == ("c", 2)
    state, action = on_decline(state, "c", T0 + 3 * S, set())
    assert isinstance(action, Fallback) and action.reason == "nobody_eligible"


def test_accept_before_expiry_wins_and_after_is_refused():
    state, offer = begin()
    refused = accept(state, "a", offer.expires_at)
    assert isinstance(refused, Refused) and refused.reason == "offer_expired"
    assert refused.state == state  # nothing changed: the timer moves on
    won = accept(state, "a", offer.expires_at - dt.timedelta(microseconds=1))
    assert isinstance(won, Accepted)
    assert won.state.owner == "a" and won.offer.status is OfferStatus.ACCEPTED
    assert won.state.done and won.state.deadline is None
    again = accept(won.state, "a", offer.expires_at + S)
    assert isinstance(again, Accepted) and again.state is won.state
    other = accept(won.state, "b", T0 + S)
    assert isinstance(other, Refused) and other.reason == "routing_closed"


def test_accept_by_someone_without_the_current_offer_is_refused():
    state, _ = begin()
    state, _ = on_decline(state, "a", T0 + S, ALL)
    for agent in ("a", "c", "zed"):  # had it, has not had it yet, never a candidate
        answer = accept(state, agent, T0 + 2 * S)
        assert isinstance(answer, Refused) and answer.reason == "not_offered"
    state, _ = begin(eligible_now=set())
    assert accept(state, "a", T0).reason == "routing_closed"


def test_a_decline_after_expiry_is_recorded_as_an_expiry():
    state, offer = begin()
    state, nxt = on_decline(state, "a", offer.expires_at + S, ALL)
    assert state.offers[0].status is OfferStatus.EXPIRED
    assert nxt.agent_id == "b"


def test_illegal_events_raise():
    state, offer = begin()
    with pytest.raises(IllegalTransition) as early:
        on_expire(state, "a", offer.expires_at - S, ALL)
    assert early.value.reason == "offer_not_expired"
    with pytest.raises(IllegalTransition) as wrong:
        on_decline(state, "b", T0 + S, ALL)
    assert wrong.value.reason == "not_offered"
    done = accept(state, "a", T0 + S).state
    with pytest.raises(IllegalTransition) as closed:
        on_decline(done, "a", T0 + 2 * S, ALL)
    assert closed.value.reason == "routing_closed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": dt.timedelta(seconds=1)}, "timeout"),
        ({"max_rounds": 0}, "max_rounds"),
        ({"max_rounds": 11}, "max_rounds"),
        ({"candidates": ("a", "a")}, "twice"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    args = {"candidates": ("a", "b"), "timeout": TIMEOUT, "max_rounds": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        start("L1", args["candidates"], T0, args["timeout"], args["max_rounds"], QUEUE)


@settings(max_examples=80, deadline=None)
@given(
    size=st.integers(1, 5),
    max_rounds=st.integers(1, 4),
    script=st.lists(st.tuples(st.booleans(), st.sets(st.integers(0, 4))), min_size=0, max_size=30),
)
def test_no_reoffer_within_a_round_and_rounds_are_bounded(size, max_rounds, script):
    candidates = tuple(f"a{i}" for i in range(size))
    state, action = start("L1", candidates, T0, TIMEOUT, max_rounds, QUEUE)
    now = T0
    for decline, eligible in script:
        if isinstance(action, Fallback):
            break
        eligible_now = {f"a{i}" for i in eligible}
        if decline:
            now += S
            state, action = on_decline(state, action.agent_id, now, eligible_now)
        else:
            now = action.expires_at
            state, action = on_expire(state, action.agent_id, now, eligible_now)
        if isinstance(action, Offer):
            assert action.agent_id in eligible_now
    rounds = [(o.round, o.agent_id) for o in state.offers]
    assert len(rounds) == len(set(rounds))  # one offer per agent per round
    assert all(1 <= r <= max_rounds for r, _ in rounds)
    assert sum(o.status is OfferStatus.PENDING for o in state.offers) == (
        0 if isinstance(action, Fallback) else 1
    )
    assert len(state.offers) <= size * max_rounds
