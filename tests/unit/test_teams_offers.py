"""The offer lifecycle: every legal transition, every illegal one refused, audit lines."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from exchange.teams import (
    AuditEvent,
    Fallback,
    FallbackKind,
    FallbackPolicy,
    IllegalTransition,
    OfferEvent,
    OfferMode,
    OfferStatus,
    audit,
    audit_fallback,
    make_offer,
    transition,
)
from exchange.teams.offers import TERMINAL, TRANSITIONS

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
TIMEOUT = dt.timedelta(seconds=60)
OFFER = make_offer("L1", "a1", OfferMode.SEQUENTIAL, T0, TIMEOUT)
BEFORE = T0 + dt.timedelta(seconds=59)
AT_EXPIRY = T0 + TIMEOUT


def test_a_new_offer():
    assert OFFER.status is OfferStatus.PENDING
    assert OFFER.expires_at == dt.datetime(2026, 11, 23, 15, 1, tzinfo=UTC)
    assert (OFFER.round, OFFER.closed_at) == (1, None)


@pytest.mark.parametrize(
    ("event", "now", "status"),
    [
        (OfferEvent.ACCEPT, BEFORE, OfferStatus.ACCEPTED),
        (OfferEvent.DECLINE, BEFORE, OfferStatus.DECLINED),
        (OfferEvent.EXPIRE, AT_EXPIRY, OfferStatus.EXPIRED),
        (OfferEvent.RESCIND, BEFORE, OfferStatus.RESCINDED),
        (OfferEvent.RESCIND, AT_EXPIRY, OfferStatus.RESCINDED),
    ],
)
def test_legal_transitions(event, now, status):
    done = transition(OFFER, event, now)
    assert (done.status, done.closed_at) == (status, now)
    assert OFFER.status is OfferStatus.PENDING  # frozen: the original is untouched


@pytest.mark.parametrize(
    ("event", "now", "reason"),
    [
        (OfferEvent.ACCEPT, AT_EXPIRY, "offer_expired"),
        (OfferEvent.DECLINE, AT_EXPIRY, "offer_expired"),
        (OfferEvent.EXPIRE, BEFORE, "offer_not_expired"),
    ],
)
def test_the_expiry_boundary_is_exact(event, now, reason):
    with pytest.raises(IllegalTransition) as caught:
        transition(OFFER, event, now)
    assert caught.value.reason == reason


@pytest.mark.parametrize("status", sorted(TERMINAL, key=lambda s: s.value))
@pytest.mark.parametrize("event", list(OfferEvent))
def test_terminal_states_are_final(status, event):
    closed = msgspec.structs.replace(OFFER, status=status, closed_at=BEFORE)
    with pytest.raises(IllegalTransition) as caught:
        transition(closed, event, AT_EXPIRY)
    assert caught.value.reason == "offer_not_pending"
    assert isinstance(caught.value, ValueError)


def test_the_transition_table_is_exactly_pending_to_each_terminal_state():
    assert TRANSITIONS == {
        (OfferStatus.PENDING, OfferEvent.ACCEPT): OfferStatus.ACCEPTED,
        (OfferStatus.PENDING, OfferEvent.DECLINE): OfferStatus.DECLINED,
        (OfferStatus.PENDING, OfferEvent.EXPIRE): OfferStatus.EXPIRED,
        (OfferStatus.PENDING, OfferEvent.RESCIND): OfferStatus.RESCINDED,
    }
    assert {s.value for s in OfferStatus} == {
        "pending", "accepted", "declined", "expired", "rescinded",
    }  # fmt: skip


def test_audit_lines():
    offered = audit(OFFER, actor="policy:rr")
    assert (offered.at, offered.event, offered.actor, offered.agent_id) == (
        T0, AuditEvent.OFFERED, "policy:rr", "a1",
    )  # fmt: skip
    assert offered.text == "a1 was offered the lead until 2026-11-23T15:01:00+00:00"
    expired = audit(transition(OFFER, OfferEvent.EXPIRE, AT_EXPIRY), reason="offer_expired")
    assert (expired.at, expired.event, expired.reason) == (
        AT_EXPIRY,
        AuditEvent.EXPIRED,
        "offer_expired",
    )
    assert expired.text == "a1 did not accept the lead in time"
    assert expired.details == {"mode": "sequential", "round": 1}
    encoded = msgspec.json.encode(expired)
    assert b'"event":"expired"' in encoded and b'"actor":"system"' in encoded


def test_fallback_policy_and_its_audit_line():
    policy = FallbackPolicy(kind=FallbackKind.TEAM, target="overflow")
    fallback = policy.fall("rounds_exhausted")
    assert fallback == Fallback(
        kind=FallbackKind.TEAM, target="overflow", reason="rounds_exhausted"
    )
    line = audit_fallback("L1", fallback, T0)
    assert line.event is AuditEvent.FALLBACK
    assert line.text == "no agent took the lead (rounds_exhausted); sent to team overflow"
