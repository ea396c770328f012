"""The offer lifecycle, fallbacks, and audit lines, shared by the sequential and parallel
strategies.

An offer starts ``pending`` and ends in exactly one of four terminal states:

    pending --accept-->  accepted    only before ``expires_at``
    pending --decline--> declined    only before ``expires_at``
    pending --expire-->  expired     only at or after ``expires_at`` (the server's durable timer)
    pending --rescind--> rescinded   any time (another agent won, or routing ended)

Everything else raises ``IllegalTransition`` with a stable reason code: the DB layer applies the
same rule as ``UPDATE offers SET status = :to WHERE id = :id AND status = 'pending' AND ...``,
and a zero rowcount is the same refusal. The boundary is exact: at ``expires_at`` an offer can
no longer be accepted and can be expired.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import msgspec

from exchange.matching.localtime import require_aware
from exchange.teams import reasons

OFFER_TIMEOUT_MIN = dt.timedelta(seconds=5)
OFFER_TIMEOUT_MAX = dt.timedelta(hours=24)


class OfferStatus(str, enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    RESCINDED = "rescinded"


class OfferEvent(str, enum.Enum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"
    RESCIND = "rescind"


class OfferMode(str, enum.Enum):
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"


TRANSITIONS: dict[tuple[OfferStatus, OfferEvent], OfferStatus] = {
    (OfferStatus.PENDING, OfferEvent.ACCEPT): OfferStatus.ACCEPTED,
    (OfferStatus.PENDING, OfferEvent.DECLINE): OfferStatus.DECLINED,
    (OfferStatus.PENDING, OfferEvent.EXPIRE): OfferStatus.EXPIRED,
    (OfferStatus.PENDING, OfferEvent.RESCIND): OfferStatus.RESCINDED,
}
TERMINAL: frozenset[OfferStatus] = frozenset(OfferStatus) - {OfferStatus.PENDING}


class IllegalTransition(ValueError):
    """An event the offer's state does not allow; ``reason`` is a code in ``reasons``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    lead_id: str
    agent_id: str
    mode: OfferMode
    offered_at: dt.datetime
    expires_at: dt.datetime
    round: int = 1  # sequential: the pass through the candidates; parallel: always 1
    status: OfferStatus = OfferStatus.PENDING
    closed_at: dt.datetime | None = None  # when it left pending

    @property
    def pending(self) -> bool:
        return self.status is OfferStatus.PENDING

    def expired_at(self, now: dt.datetime) -> bool:
        """True when the acceptance timeout has run out at ``now`` (whatever the status)."""
        return require_aware(now) >= self.expires_at


def make_offer(
    lead_id: str,
    agent_id: str,
    mode: OfferMode,
    now: dt.datetime,
    timeout: dt.timedelta,
    round: int = 1,
) -> Offer:
    now = require_aware(now)
    return Offer(
        lead_id=lead_id,
        agent_id=agent_id,
        mode=mode,
        offered_at=now,
        expires_at=now + timeout,
        round=round,
    )


def check_timeout(timeout: dt.timedelta) -> None:
    if not OFFER_TIMEOUT_MIN <= timeout <= OFFER_TIMEOUT_MAX:
        raise ValueError(f"offer timeout must be {OFFER_TIMEOUT_MIN} to {OFFER_TIMEOUT_MAX}")


def transition(offer: Offer, event: OfferEvent, now: dt.datetime) -> Offer:
    """The offer after ``event`` at ``now``, or ``IllegalTransition`` (rules in the docstring)."""
    now = require_aware(now)
    to = TRANSITIONS.get((offer.status, event))
    if to is None:
        raise IllegalTransition(
            reasons.OFFER_NOT_PENDING, f"cannot {event.value} an offer that is {offer.status.value}"
        )
    if event in (OfferEvent.ACCEPT, OfferEvent.DECLINE) and offer.expired_at(now):
        raise IllegalTransition(
            reasons.OFFER_EXPIRED, f"cannot {event.value}: the offer expired at {offer.expires_at}"
        )
    if event is OfferEvent.EXPIRE and not offer.expired_at(now):
        raise IllegalTransition(
            reasons.OFFER_NOT_EXPIRED, f"the offer runs until {offer.expires_at}"
        )
    return msgspec.structs.replace(offer, status=to, closed_at=now)


# -- fallbacks ------------------------------------------------------------------------------------


class FallbackKind(str, enum.Enum):
    TEAM = "team"  # route the lead to another team (target: its id)
    QUEUE = "queue"  # park it in a queue (target: the queue's id, usually the team's own)
    PERSON = "person"  # give it to a named person (target: the agent or user id)


class FallbackPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A team's setting: where a lead goes when its strategy ends without an owner."""

    kind: FallbackKind
    target: str

    def fall(self, reason: str) -> Fallback:
        return Fallback(kind=self.kind, target=self.target, reason=reason)


class Fallback(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome: the strategy ended without an owner; send the lead to ``target``."""

    kind: FallbackKind
    target: str
    reason: str  # nobody_eligible, rounds_exhausted, no_claim_before_expiry, all_declined, ...


# -- audit ----------------------------------------------------------------------------------------


class AuditEvent(str, enum.Enum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    RESCINDED = "rescinded"
    CLAIM_CONFLICT = "claim_conflict"  # a late or losing claim (answered 409)
    FALLBACK = "fallback"
    QUEUED = "queued"
    DRAINED = "drained"
    QUEUE_EXPIRED = "queue_expired"
    SLA_BREACHED = "sla_breached"
    REASSIGNED = "reassigned"


_EVENT_FOR_STATUS = {
    OfferStatus.PENDING: AuditEvent.OFFERED,
    OfferStatus.ACCEPTED: AuditEvent.ACCEPTED,
    OfferStatus.DECLINED: AuditEvent.DECLINED,
    OfferStatus.EXPIRED: AuditEvent.EXPIRED,
    OfferStatus.RESCINDED: AuditEvent.RESCINDED,
}

_TEXT_FOR_STATUS = {
    OfferStatus.PENDING: "{agent} was offered the lead until {until}",
    OfferStatus.ACCEPTED: "{agent} accepted the lead",
    OfferStatus.DECLINED: "{agent} declined the lead",
    OfferStatus.EXPIRED: "{agent} did not accept the lead in time",
    OfferStatus.RESCINDED: "the offer to {agent} was withdrawn",
}

SYSTEM_ACTOR = "system"


class AuditLine(msgspec.Struct, frozen=True, kw_only=True):
    """One append-only line of a lead's routing history."""

    at: dt.datetime
    lead_id: str
    event: AuditEvent
    actor: str = SYSTEM_ACTOR  # "system", "policy:<id>" or "agent:<id>"
    agent_id: str | None = None
    reason: str | None = None
    text: str = ""  # human-readable, for the UI
    details: dict[str, Any] = {}


def audit(offer: Offer, *, actor: str = SYSTEM_ACTOR, reason: str | None = None) -> AuditLine:
    """The line for an offer in its current status (``offered`` while pending, at
    ``offered_at``; otherwise at ``closed_at``)."""
    at = offer.offered_at if offer.closed_at is None else offer.closed_at
    text = _TEXT_FOR_STATUS[offer.status].format(
        agent=offer.agent_id, until=offer.expires_at.isoformat()
    )
    return AuditLine(
        at=at,
        lead_id=offer.lead_id,
        event=_EVENT_FOR_STATUS[offer.status],
        actor=actor,
        agent_id=offer.agent_id,
        reason=reason,
        text=text,
        details={"mode": offer.mode.value, "round": offer.round},
    )


def audit_fallback(lead_id: str, fallback: Fallback, now: dt.datetime) -> AuditLine:
    return AuditLine(
        at=require_aware(now),
        lead_id=lead_id,
        event=AuditEvent.FALLBACK,
        reason=fallback.reason,
        text=f"no agent took the lead ({fallback.reason}); sent to {fallback.kind.value} "
        f"{fallback.target}",
        details={"kind": fallback.kind.value, "target": fallback.target},
    )
