"""Wire messages of the ping-post protocol (suppliers) and of traces (everyone)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

from exchange.intake.messages import MAX_KEY_CHARS, Consent, SubIds
from exchange.scoring.rules import LeadScore

MAX_SELLS_MAX = 10


class PingIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A ping: the lead without its PII, to learn what it would sell for."""

    vertical: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS)]
    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any]
    source: str | None = None
    sub_ids: SubIds | None = None
    test: bool = False
    # 1: exclusive (one buyer). N > 1: shared with up to N distinct buyers.
    max_sells: Annotated[int, msgspec.Meta(ge=1, le=MAX_SELLS_MAX)] = 1


class OfferedBidOut(msgspec.Struct, kw_only=True):
    bid_id: str  # opaque; name it in `bid_ids` on the post to take only some bids
    payout_minor: int


class PingOut(msgspec.Struct, kw_only=True):
    status: str  # accepted (a bid is offered) or rejected
    ping_id: uuid.UUID | None
    payout_minor: int
    currency: str
    expires_at: dt.datetime | None
    bids: list[OfferedBidOut] = msgspec.field(default_factory=list)
    reasons: list[str] = msgspec.field(default_factory=list)


class PostIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A post: the whole lead, PII included, for a ping that was offered a bid."""

    ping_id: uuid.UUID
    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any]
    consent: Consent | None = None
    bid_ids: list[str] | None = None  # shared leads: the bids taken (default: all offered)


class SaleOut(msgspec.Struct, kw_only=True):
    payout_minor: int
    reference: str | None = None


class PostOut(msgspec.Struct, kw_only=True):
    status: str  # sold or unsold
    lead_id: uuid.UUID
    vertical: str
    payout_minor: int  # what the supplier earns for this lead
    currency: str
    sales: int  # how many buyers bought it
    test: bool = False
    reasons: list[str] = msgspec.field(default_factory=list)  # why it did not sell


class TraceEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One campaign's part in one lead: its reason code and the numbers behind it."""

    campaign_id: str
    buyer_id: str
    reason: str | None  # None: eligible and ranked, not yet decided (a ping that is open)
    bid_minor: int | None = None
    payout_minor: int | None = None
    latency_ms: int | None = None
    details: dict[str, Any] = {}


class Trace(msgspec.Struct, kw_only=True, omit_defaults=True):
    subject_id: uuid.UUID
    stage: str
    created_at: dt.datetime
    entries: list[TraceEntry]
    # The lead's score as campaigns' score filters saw it, with its parts (operators only).
    score: LeadScore | None = None
