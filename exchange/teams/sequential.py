"""Sequential offers: one agent at a time, in priority order, each with a timeout the server
enforces; a pure state machine the DB layer and its durable timers drive.

    step = start("L1", ("a", "b", "c"), now, timeout, max_rounds=2, fallback=policy)
    # step.action is the Offer to send (or a Fallback); persist step.state
    step = on_decline(step.state, "a", now, eligible_now={"b", "c"})   # -> offer to "b"
    step = on_expire(step.state, "b", now, eligible_now={"a", "c"})    # -> offer to "c"
    answer = accept(step.state, "c", now)                               # Accepted or Refused

Rules:
- A round is one pass through the candidates in priority order. Each decline or expiry moves to
  the next candidate of the round that is eligible *now* (the caller re-checks eligibility and
  passes ``eligible_now``, e.g. an agent who went offline is skipped); nobody is offered the lead
  twice in one round.
- When the round is spent, the next round starts again from the top (re-offering is allowed
  across rounds), up to ``max_rounds``; then the team's fallback (``rounds_exhausted``). If no
  candidate is eligible at all, the fallback comes at once (``nobody_eligible``): more rounds
  could not help.
- ``expires_at = now + timeout``, set when the offer is made. Accepting at or after it is
  refused (``offer_expired``) even if the timer has not run yet; a decline that arrives after it
  is recorded as an expiry.
- Events for anyone but the current offer's agent, or after routing ended, raise
  ``IllegalTransition``; an accept that cannot win is answered with ``Refused`` (the 409).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import NamedTuple

import msgspec

from exchange.matching.localtime import require_aware
from exchange.teams import reasons
from exchange.teams.offers import (
    Fallback,
    FallbackPolicy,
    IllegalTransition,
    Offer,
    OfferEvent,
    OfferMode,
    check_timeout,
    make_offer,
    transition,
)

MAX_ROUNDS_MAX = 10
CANDIDATES_MAX = 500


class SequentialState(msgspec.Struct, frozen=True, kw_only=True):
    """Plain data (msgspec-encodable): the DB layer stores it with the lead between events."""

    lead_id: str
    candidates: tuple[str, ...]  # priority order, highest first
    timeout: dt.timedelta
    max_rounds: int
    fallback: FallbackPolicy
    round: int = 1
    offers: tuple[Offer, ...] = ()  # every offer made, oldest first; only the last may be pending
    owner: str | None = None  # set by an accepted offer
    fell_back: Fallback | None = None

    @property
    def done(self) -> bool:
        return self.owner is not None or self.fell_back is not None

    @property
    def current(self) -> Offer | None:
        """The pending offer, if any."""
        if self.offers and self.offers[-1].pending:
            return self.offers[-1]
        return None

    @property
    def deadline(self) -> dt.datetime | None:
        """When the durable timer must fire ``on_expire`` (None when no offer is pending)."""
        current = self.current
        return None if current is None else current.expires_at

    def offered_in_round(self, round: int | None = None) -> frozenset[str]:
        r = self.round if round is None else round
        return frozenset(o.agent_id for o in self.offers if o.round == r)


class Step(NamedTuple):
    state: SequentialState
    action: Offer | Fallback  # the offer to send now, or where the lead goes


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    state: SequentialState
    offer: Offer


class Refused(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # offer_expired, not_offered, routing_closed
    state: SequentialState


def start(
    lead_id: str,
    candidates: Sequence[str],
    now: dt.datetime,
    timeout: dt.timedelta,
    max_rounds: int,
    fallback: FallbackPolicy,
    eligible_now: Collection[str] | None = None,
) -> Step:
    """The first offer (or the fallback). ``candidates`` are the team's agents in priority order;
    ``eligible_now`` those eligible at ``now`` (None: all of them)."""
    now = require_aware(now)
    check_timeout(timeout)
    if not 1 <= max_rounds <= MAX_ROUNDS_MAX:
        raise ValueError(f"max_rounds must be 1 to {MAX_ROUNDS_MAX}")
    candidates = tuple(candidates)
    if len(set(candidates)) != len(candidates):
        raise ValueError("a candidate appears twice")
    if len(candidates) > CANDIDATES_MAX:
        raise ValueError(f"at most {CANDIDATES_MAX} candidates")
    state = SequentialState(
        lead_id=lead_id,
        candidates=candidates,
        timeout=timeout,
        max_rounds=max_rounds,
        fallback=fallback,
    )
    return _advance(state, now, candidates if eligible_now is None else eligible_now)


def _offer(state: SequentialState, agent_id: str, round: int, now: dt.datetime) -> Step:
    offer = make_offer(state.lead_id, agent_id, OfferMode.SEQUENTIAL, now, state.timeout, round)
    new = msgspec.structs.replace(state, round=round, offers=(*state.offers, offer))
    return Step(new, offer)


def _fall(state: SequentialState, reason: str) -> Step:
    fallback = state.fallback.fall(reason)
    return Step(msgspec.structs.replace(state, fell_back=fallback), fallback)


def _advance(state: SequentialState, now: dt.datetime, eligible_now: Collection[str]) -> Step:
    eligible = [a for a in state.candidates if a in eligible_now]
    if not eligible:
        return _fall(state, reasons.NOBODY_ELIGIBLE)
    tried = state.offered_in_round()
    for agent_id in eligible:
        if agent_id not in tried:
            return _offer(state, agent_id, state.round, now)
    if state.round < state.max_rounds:
        return _offer(state, eligible[0], state.round + 1, now)
    return _fall(state, reasons.ROUNDS_EXHAUSTED)


def _current_for(state: SequentialState, agent_id: str) -> Offer:
    if state.done:
        raise IllegalTransition(reasons.ROUTING_CLOSED, f"routing of {state.lead_id} ended")
    current = state.current
    if current is None or current.agent_id != agent_id:
        raise IllegalTransition(reasons.NOT_OFFERED, f"{agent_id} has no pending offer")
    return current


def _close(
    state: SequentialState,
    offer: Offer,
    event: OfferEvent,
    now: dt.datetime,
    eligible_now: Collection[str],
) -> Step:
    closed = transition(offer, event, now)
    state = msgspec.structs.replace(state, offers=(*state.offers[:-1], closed))
    return _advance(state, now, eligible_now)


def on_decline(
    state: SequentialState, agent_id: str, now: dt.datetime, eligible_now: Collection[str]
) -> Step:
    """``agent_id`` declined its offer; a decline after ``expires_at`` counts as an expiry."""
    now = require_aware(now)
    offer = _current_for(state, agent_id)
    event = OfferEvent.EXPIRE if offer.expired_at(now) else OfferEvent.DECLINE
    return _close(state, offer, event, now, eligible_now)


def on_expire(
    state: SequentialState, agent_id: str, now: dt.datetime, eligible_now: Collection[str]
) -> Step:
    """The server's timer: ``agent_id``'s offer ran out (refused before ``expires_at``)."""
    now = require_aware(now)
    offer = _current_for(state, agent_id)
    return _close(state, offer, OfferEvent.EXPIRE, now, eligible_now)


def accept(state: SequentialState, agent_id: str, now: dt.datetime) -> Accepted | Refused:
    """The agent takes the lead. A repeated accept by the owner is answered the same way."""
    now = require_aware(now)
    if state.owner is not None:
        if state.owner == agent_id:
            return Accepted(state=state, offer=state.offers[-1])
        return Refused(reason=reasons.ROUTING_CLOSED, state=state)
    if state.fell_back is not None:
        return Refused(reason=reasons.ROUTING_CLOSED, state=state)
    current = state.current
    if current is None or current.agent_id != agent_id:
        return Refused(reason=reasons.NOT_OFFERED, state=state)
    if current.expired_at(now):
        return Refused(reason=reasons.OFFER_EXPIRED, state=state)
    accepted = transition(current, OfferEvent.ACCEPT, now)
    new = msgspec.structs.replace(state, offers=(*state.offers[:-1], accepted), owner=agent_id)
    return Accepted(state=new, offer=accepted)
