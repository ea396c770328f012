"""Typed mirrors of the exchange API's JSON, as ``msgspec`` Structs.

Responses decode leniently: a field the exchange adds later is ignored, so an older SDK keeps
working. Enumerations (``price_mode``, ``status``...) are plain strings for the same reason.
Money is always an integer in minor units (cents) in fields ending ``_minor``.

``tests/sdk/test_contract.py`` checks these against the exchange's OpenAPI document, so a field
renamed or retyped on one side fails the build rather than a customer's integration.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Interval(msgspec.Struct, kw_only=True):
    """Local minutes of a day: ``start`` included, ``end`` excluded (540-1020 is 09:00-17:00)."""

    start: int
    end: int


class Schedule(msgspec.Struct, kw_only=True):
    """Weekly opening hours: ``days`` maps ``mon``..``sun`` to intervals."""

    timezone: str
    days: dict[str, list[Interval]] = {}


class Cap(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A lead-count and/or spend limit per ``hour``, ``day``, ``week`` or ``month``."""

    window: str
    max_count: int | None = None
    max_spend_minor: int | None = None


class ReturnPolicy(msgspec.Struct, kw_only=True):
    """When a lead bought on the campaign may be returned (``window_days`` 0: never)."""

    window_days: int = 0
    reasons: list[str] = []
    max_rate_bps: int = 0


class CampaignIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A campaign as you write it (create, and replace as a whole).

    Fields left at their default are not sent, so the exchange's own defaults apply.
    ``filters`` and ``endpoints`` are the JSON shapes of docs/campaigns.md (see
    ``buyers_sdk.receiver.endpoints`` for endpoints that answer with the receiver toolkit).
    """

    name: str
    vertical: str
    timezone: str | None = None
    active: bool = True
    filters: list[dict[str, Any]] = []
    schedule: Schedule | None = None
    caps: list[Cap] = []
    price_mode: str = "fixed"
    fixed_price_minor: int | None = None
    floor_minor: int = 0
    max_sells: int = 1
    tier: int = 1
    endpoints: dict[str, Any] | None = None
    returns: ReturnPolicy | None = None
    buyer_id: uuid.UUID | None = None  # operators only


class Campaign(msgspec.Struct, kw_only=True):
    """A campaign as the exchange shows it; endpoint secrets read ``"[redacted]"``."""

    id: uuid.UUID
    buyer_id: uuid.UUID
    vertical: str
    name: str
    timezone: str
    active: bool
    filters: list[dict[str, Any]]
    schedule: Schedule | None
    caps: list[Cap]
    price_mode: str
    fixed_price_minor: int | None
    floor_minor: int
    max_sells: int
    tier: int
    endpoints: dict[str, Any] | None
    returns: ReturnPolicy
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_input(self, **changes: Any) -> CampaignIn:
        """This campaign as a ``CampaignIn`` for ``replace_campaign``, with ``changes`` applied.

        Redacted secrets sent back unchanged keep the stored ones (see docs/campaigns.md).
        """
        values = {f: getattr(self, f) for f in CampaignIn.__struct_fields__ if f != "buyer_id"}
        values.update(changes)
        return CampaignIn(**values)


class BuyerAccount(msgspec.Struct, kw_only=True):
    """Your money and terms (``GET /v1/account``)."""

    buyer_id: uuid.UUID
    balance_minor: int  # prepaid money left; below zero: owed, down to -credit_limit_minor
    credit_limit_minor: int
    spendable_minor: int  # balance + credit - leads sold to you still being delivered
    margin: dict[str, Any] | None
    penalty_bps: int
    updated_at: dt.datetime | None


class Purchase(msgspec.Struct, kw_only=True):
    """A lead you bought and were charged for (``GET /v1/purchases``)."""

    sale_id: uuid.UUID
    lead_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int
    currency: str
    delivered_at: dt.datetime
    status: str  # delivered, or returned (refunded)
    returnable_until: dt.datetime | None  # None: the campaign takes no returns
    return_id: uuid.UUID | None
    return_status: str | None


class ReturnIn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A return you file: name the sale or the lead, and one of the campaign's reasons."""

    reason: str
    sale_id: uuid.UUID | None = None
    lead_id: uuid.UUID | None = None
    note: str | None = None


class Return(msgspec.Struct, kw_only=True):
    """A return: ``requested``, then ``approved`` (refunded) or ``denied`` by finance."""

    id: uuid.UUID
    sale_id: uuid.UUID
    lead_id: uuid.UUID
    buyer_id: uuid.UUID
    supplier_id: uuid.UUID
    campaign_id: uuid.UUID
    price_minor: int
    payout_minor: int
    currency: str
    reason: str
    note: str | None
    status: str
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: uuid.UUID | None
    decision_note: str | None
    claw_back: bool | None
    entry_id: uuid.UUID | None


class TraceEntry(msgspec.Struct, kw_only=True):
    """One of your campaigns' part in a lead: its reason code (docs/reason-codes.md)."""

    campaign_id: str
    buyer_id: str
    reason: str | None  # None: eligible and ranked, not yet decided
    bid_minor: int | None = None
    payout_minor: int | None = None
    latency_ms: int | None = None
    details: dict[str, Any] = {}


class Trace(msgspec.Struct, kw_only=True):
    subject_id: uuid.UUID
    stage: str  # ping, post, direct...
    created_at: dt.datetime
    entries: list[TraceEntry]


class TraceView(msgspec.Struct, kw_only=True):
    """Why a lead (or ping) did or did not come to your campaigns."""

    subject_id: uuid.UUID
    lead_id: uuid.UUID | None
    ping_id: uuid.UUID | None
    stages: list[Trace]
    reasons: list[str]

    def by_campaign(self) -> dict[str, list[TraceEntry]]:
        """Every entry of every stage, grouped by campaign id, in stage order."""
        grouped: dict[str, list[TraceEntry]] = {}
        for stage in self.stages:
            for entry in stage.entries:
                grouped.setdefault(entry.campaign_id, []).append(entry)
        return grouped


class AccountBalance(msgspec.Struct, kw_only=True):
    """A ledger account over a period: opening, debits, credits, closing."""

    account: str
    kind: str
    party_id: uuid.UUID | None
    currency: str
    normal_side: str
    opening_minor: int
    debits_minor: int
    credits_minor: int
    closing_minor: int


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """A page of items, oldest first; pass ``next_after`` as ``after`` for the next page."""

    items: list[T]
    next_after: uuid.UUID | None = None


class FieldProblem(msgspec.Struct, kw_only=True, frozen=True):
    path: str
    reason: str


class ErrorBody(msgspec.Struct, kw_only=True):
    code: str
    message: str
    fields: list[FieldProblem] | None = None
    details: dict[str, Any] | None = None


class ErrorResponse(msgspec.Struct, kw_only=True):
    error: ErrorBody


# Response Structs and the OpenAPI component each one mirrors (the contract test reads this).
RESPONSE_SCHEMAS: dict[type[msgspec.Struct], str] = {
    Campaign: "Campaign",
    Cap: "Cap",
    Schedule: "Schedule",
    Interval: "Interval",
    ReturnPolicy: "ReturnPolicy",
    BuyerAccount: "BuyerAccount",
    Return: "Return",
    TraceView: "TraceView",
    Trace: "Trace",
    TraceEntry: "TraceEntry",
    AccountBalance: "AccountBalance",
}
# Request Structs and the OpenAPI component of the body they are sent as.
REQUEST_SCHEMAS: dict[type[msgspec.Struct], str] = {
    CampaignIn: "CampaignIn",
    ReturnIn: "ReturnIn",
}
