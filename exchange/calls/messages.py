"""The calls API's wire messages (docs/calls.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

from exchange.calls.ringing import CallDestination
from exchange.calls.terms import ADDRESS_MAX_CHARS
from exchange.intake.messages import MAX_KEY_CHARS, Consent, SubIds

CALL_DURATION_MAX_S = 86_400  # a day: no call lasts longer; a bigger number is a unit mistake


class CallPingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A call ping: what the caller said so far (no PII), to learn where the call goes."""

    vertical: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS)]
    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any] = {}
    source: str | None = None
    sub_ids: SubIds | None = None
    test: bool = False


class CallOffer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The answer to a call ping: accepted, where it rings and until when the caller may
    connect; or rejected, with the reasons."""

    status: str  # accepted or rejected
    call_id: uuid.UUID
    payout_minor: int  # paid to the supplier once the call is billed
    currency: str
    expires_at: dt.datetime | None = None
    min_duration_s: int | None = None  # the call is billed (and paid) from this duration on
    ring: str | None = None  # single, sequential or simultaneous
    ring_timeout_s: int | None = None
    destinations: list[CallDestination] = []
    reasons: list[str] = []


class ConnectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The caller arrived: its number (and anything more it said) makes the call's lead."""

    caller: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]  # the caller's number
    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any] = {}
    consent: Consent | None = None


class AnswerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which destination picked up (needed when the plan rang more than one)."""

    address: Annotated[str, msgspec.Meta(min_length=1, max_length=ADDRESS_MAX_CHARS)] | None = None


class EndIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The call ended: how long it was answered for (0: nobody answered)."""

    duration_s: Annotated[int, msgspec.Meta(ge=0, le=CALL_DURATION_MAX_S)]
    # The destination that answered, when no answer was reported before.
    answered_by: Annotated[str, msgspec.Meta(min_length=1, max_length=ADDRESS_MAX_CHARS)] | None = None


class CallView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A call as its supplier, its buyer or an operator sees it."""

    call_id: uuid.UUID
    status: str
    vertical_id: uuid.UUID
    test: bool
    currency: str
    min_duration_s: int
    ring: str
    destinations: list[CallDestination]
    created_at: dt.datetime
    expires_at: dt.datetime
    payout_minor: int | None = None  # the supplier's: operators and the supplier only
    price_minor: int | None = None  # the buyer's price: operators and the buyer only
    campaign_id: uuid.UUID | None = None  # operators and the buyer only
    team_id: uuid.UUID | None = None
    ring_timeout_s: int | None = None
    lead_id: uuid.UUID | None = None
    sale_id: uuid.UUID | None = None
    answered_by: str | None = None
    agent_id: uuid.UUID | None = None
    connected_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    duration_s: int | None = None
    reason: str | None = None


class CallPage(msgspec.Struct, kw_only=True):
    items: list[CallView]
    next_after: uuid.UUID | None = None
