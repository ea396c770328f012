"""Parallel offers: every eligible agent (or the first ``k``) at once; the first claim wins.

    step = offers("L1", ranked_eligible, now, timeout, fallback=policy, k=3)
    answer = claim(step.state, "b", now)    # Won (rescind the others) or Lost (the 409)

The DB layer makes "first" real with one compare-and-set on the lead's owner (``UPDATE leads SET
owner_id = :a WHERE id = :l AND owner_id IS NULL``); this module decides what each claim is
answered, which offers get rescinded, and what the state becomes. Given the claims in the order
the DB serialised them, exactly one agent wins and every other claim loses.

Answers to a claim:
- ``Won``: the agent's offer is accepted, every other pending offer rescinded (its losers are
  told who won). A repeated claim by the winner is answered ``Won`` again, rescinding nothing.
- ``Lost`` (HTTP 409, carrying the lead's status and the winner): ``already_claimed`` when
  another agent owns it, ``offer_expired`` at or after ``expires_at``, ``offer_not_pending`` when
  the agent declined, ``not_offered`` for an agent without an offer, ``routing_closed`` after the
  fallback.

No claim before ``expires_at`` (the server's timer calls ``on_expire``): every pending offer
expires and the team's fallback applies. If every offer is declined first, the fallback comes at
once (``all_declined``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal, NamedTuple

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
    OfferStatus,
    check_timeout,
    make_offer,
    transition,
)

FANOUT_MAX = 500

LeadStatus = Literal["offered", "owned", "fell_back"]


class ParallelState(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    offers: tuple[Offer, ...]  # one per agent, in the order given
    expires_at: dt.datetime  # shared by all offers
    fallback: FallbackPolicy
    winner: str | None = None
    fell_back: Fallback | None = None

    @property
    def status(self) -> LeadStatus:
        if self.winner is not None:
            return "owned"
        if self.fell_back is not None:
            return "fell_back"
        return "offered"

    def offer_for(self, agent_id: str) -> Offer | None:
        return next((o for o in self.offers if o.agent_id == agent_id), None)


class Step(NamedTuple):
    state: ParallelState
    action: tuple[Offer, ...] | Fallback | None  # offers to send, a fallback, or nothing yet


class Won(msgspec.Struct, frozen=True, kw_only=True):
    state: ParallelState
    offer: Offer
    rescinded: tuple[Offer, ...]  # tell these agents the lead is taken (and by whom)


class Lost(msgspec.Struct, frozen=True, kw_only=True):
    """The 409 answer: why, who owns the lead (if anyone), and the lead's state."""

    reason: str
    winner: str | None
    state: ParallelState

    @property
    def lead_status(self) -> LeadStatus:
        return self.state.status


def offers(
    lead_id: str,
    eligible: Sequence[str],
    now: dt.datetime,
    timeout: dt.timedelta,
    fallback: FallbackPolicy,
    k: int | None = None,
) -> Step:
    """Offers to the first ``k`` of ``eligible`` (all when None), in the given order (e.g.
    round-robin order), all expiring at ``now + timeout``; the fallback if nobody is eligible."""
    now = require_aware(now)
    check_timeout(timeout)
    if k is not None and not 1 <= k <= FANOUT_MAX:
        raise ValueError(f"k must be 1 to {FANOUT_MAX}")
    if len(set(eligible)) != len(eligible):
        raise ValueError("an agent appears twice")
    chosen = tuple(eligible)[: FANOUT_MAX if k is None else k]
    made = tuple(make_offer(lead_id, a, OfferMode.PARALLEL, now, timeout) for a in chosen)
    state = ParallelState(lead_id=lead_id, offers=made, expires_at=now + timeout, fallback=fallback)
    if not made:
        return _fall(state, reasons.NOBODY_ELIGIBLE)
    return Step(state, made)


def _fall(state: ParallelState, reason: str) -> Step:
    fallback = state.fallback.fall(reason)
    return Step(msgspec.structs.replace(state, fell_back=fallback), fallback)


def _lost(state: ParallelState, reason: str) -> Lost:
    return Lost(reason=reason, winner=state.winner, state=state)


def claim(state: ParallelState, agent_id: str, now: dt.datetime) -> Won | Lost:
    """The answer to ``agent_id``'s claim at ``now`` (rules in the module docstring)."""
    now = require_aware(now)
    offer = state.offer_for(agent_id)
    if state.winner is not None:
        if state.winner == agent_id and offer is not None:
            return Won(state=state, offer=offer, rescinded=())
        return _lost(state, reasons.ALREADY_CLAIMED)
    if state.fell_back is not None:
        return _lost(state, reasons.ROUTING_CLOSED)
    if offer is None:
        return _lost(state, reasons.NOT_OFFERED)
    if not offer.pending:
        return _lost(state, reasons.OFFER_NOT_PENDING)
    if offer.expired_at(now):
        return _lost(state, reasons.OFFER_EXPIRED)
    accepted = transition(offer, OfferEvent.ACCEPT, now)
    closed: list[Offer] = []
    rescinded: list[Offer] = []
    for other in state.offers:
        if other.agent_id == agent_id:
            closed.append(accepted)
        elif other.pending:
            withdrawn = transition(other, OfferEvent.RESCIND, now)
            closed.append(withdrawn)
            rescinded.append(withdrawn)
        else:
            closed.append(other)
    new = msgspec.structs.replace(state, offers=tuple(closed), winner=agent_id)
    return Won(state=new, offer=accepted, rescinded=tuple(rescinded))


def decline(state: ParallelState, agent_id: str, now: dt.datetime) -> Step:
    """``agent_id`` declines; when it was the last pending offer, the fallback (all_declined)."""
    now = require_aware(now)
    if state.winner is not None or state.fell_back is not None:
        raise IllegalTransition(reasons.ROUTING_CLOSED, f"routing of {state.lead_id} ended")
    offer = state.offer_for(agent_id)
    if offer is None:
        raise IllegalTransition(reasons.NOT_OFFERED, f"{agent_id} has no offer")
    declined = transition(offer, OfferEvent.DECLINE, now)
    new = msgspec.structs.replace(
        state, offers=tuple(declined if o.agent_id == agent_id else o for o in state.offers)
    )
    if all(o.status is OfferStatus.DECLINED for o in new.offers):
        return _fall(new, reasons.ALL_DECLINED)
    return Step(new, None)


def on_expire(state: ParallelState, now: dt.datetime) -> Step:
    """The server's timer at ``expires_at``: nobody claimed, so every pending offer expires and
    the lead falls back (``no_claim_before_expiry``)."""
    now = require_aware(now)
    if state.winner is not None or state.fell_back is not None:
        raise IllegalTransition(reasons.ROUTING_CLOSED, f"routing of {state.lead_id} ended")
    if now < state.expires_at:
        raise IllegalTransition(reasons.OFFER_NOT_EXPIRED, f"offers run until {state.expires_at}")
    expired = tuple(transition(o, OfferEvent.EXPIRE, now) if o.pending else o for o in state.offers)
    return _fall(msgspec.structs.replace(state, offers=expired), reasons.NO_CLAIM_BEFORE_EXPIRY)
