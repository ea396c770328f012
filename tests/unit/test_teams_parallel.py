"""Parallel offers: first claim wins, the others are rescinded, late claims lose (409)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.teams import Fallback, FallbackKind, FallbackPolicy, IllegalTransition, OfferStatus
from exchange.teams.parallel import Lost, Won, claim, decline, offers, on_expire

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
TIMEOUT = dt.timedelta(seconds=30)
S = dt.timedelta(seconds=1)
PERSON = FallbackPolicy(kind=FallbackKind.PERSON, target="manager-1")


def broadcast(eligible=("a", "b", "c"), k=None):
    return offers("L1", eligible, T0, TIMEOUT, PERSON, k)


def test_offers_to_every_eligible_agent_with_one_expiry():
    state, sent = broadcast()
    assert [o.agent_id for o in sent] == ["a", "b", "c"]
    assert {o.expires_at for o in sent} == {T0 + TIMEOUT} == {state.expires_at}
    assert state.status == "offered"


def test_offers_to_the_first_k():
    state, sent = broadcast(eligible=("c", "a", "b", "d"), k=2)
    assert [o.agent_id for o in sent] == ["c", "a"]
    assert claim(state, "b", T0 + S).reason == "not_offered"


def test_nobody_eligible_falls_back():
    state, action = broadcast(eligible=())
    assert action == Fallback(
        kind=FallbackKind.PERSON, target="manager-1", reason="nobody_eligible"
    )
    assert state.status == "fell_back"


def test_first_claim_wins_and_the_others_are_rescinded():
    state, _ = broadcast()
    won = claim(state, "b", T0 + 5 * S)
    assert isinstance(won, Won)
    assert won.offer.status is OfferStatus.ACCEPTED and won.offer.closed_at == T0 + 5 * S
    assert [(o.agent_id, o.status) for o in won.rescinded] == [
        ("a", OfferStatus.RESCINDED), ("c", OfferStatus.RESCINDED),
    ]  # fmt: skip
    assert (won.state.winner, won.state.status) == ("b", "owned")
    late = claim(won.state, "a", T0 + 6 * S)
    assert isinstance(late, Lost)
    assert (late.reason, late.winner, late.lead_status) == ("already_claimed", "b", "owned")
    again = claim(won.state, "b", T0 + 7 * S)  # the winner retrying is answered the same way
    assert isinstance(again, Won) and again.rescinded == () and again.state is won.state


def test_a_claim_at_expiry_loses_and_expiry_falls_back():
    state, _ = broadcast()
    late = claim(state, "a", T0 + TIMEOUT)
    assert isinstance(late, Lost) and (late.reason, late.winner) == ("offer_expired", None)
    with pytest.raises(IllegalTransition) as early:
        on_expire(state, T0 + TIMEOUT - S)
    assert early.value.reason == "offer_not_expired"
    state, action = on_expire(state, T0 + TIMEOUT)
    assert action == Fallback(
        kind=FallbackKind.PERSON, target="manager-1", reason="no_claim_before_expiry"
    )
    assert {o.status for o in state.offers} == {OfferStatus.EXPIRED}
    after = claim(state, "a", T0 + TIMEOUT + S)
    assert (after.reason, after.lead_status) == ("routing_closed", "fell_back")


def test_declines_then_all_declined_falls_back_early():
    state, _ = broadcast(eligible=("a", "b"))
    state, action = decline(state, "a", T0 + S)
    assert action is None
    assert claim(state, "a", T0 + 2 * S).reason == "offer_not_pending"
    state, action = decline(state, "b", T0 + 2 * S)
    assert isinstance(action, Fallback) and action.reason == "all_declined"
    with pytest.raises(IllegalTransition):
        decline(state, "b", T0 + 3 * S)


def test_a_winner_makes_expiry_and_decline_illegal():
    state, _ = broadcast()
    won = claim(state, "a", T0 + S)
    with pytest.raises(IllegalTransition) as caught:
        on_expire(won.state, T0 + TIMEOUT)
    assert caught.value.reason == "routing_closed"
    with pytest.raises(IllegalTransition):
        decline(won.state, "b", T0 + 2 * S)


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(1, 8),
    claims=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 40)), max_size=50),
)
def test_exactly_one_owner_whatever_the_claims(size, claims):
    """Claims in the order the DB serialised them: the first in-time claim by an offered agent
    wins; every other agent loses; exactly one offer ends accepted, the rest rescinded."""
    agents = [f"a{i}" for i in range(size)]
    state, _ = offers("L1", agents, T0, TIMEOUT, PERSON)
    winners = set()
    expected = next(
        (f"a{i}" for i, sec in claims if i < size and sec < TIMEOUT.total_seconds()), None
    )
    for i, sec in claims:
        answer = claim(state, f"a{i}", T0 + sec * S)
        if isinstance(answer, Won):
            winners.add(answer.offer.agent_id)
            state = answer.state
        else:
            assert answer.winner == state.winner
    assert len(winners) <= 1
    assert state.winner == expected
    statuses = sorted(o.status.value for o in state.offers)
    if expected is None:
        assert statuses == ["pending"] * size
    else:
        assert statuses == sorted(["accepted"] + ["rescinded"] * (size - 1))
