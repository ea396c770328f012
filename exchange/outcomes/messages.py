"""Outcomes on the wire: what an agent or a buyer reports about a lead, and what it reads back.

Bounds are checked on decode (``Annotated`` metadata); what depends on the kind (a value only on
``won``, a reason only on ``lost`` and ``bad_lead``) and on the lead (its vertical's currency,
when it could have happened) is checked by ``exchange.outcomes.service.problems``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated

import msgspec

REASON_MAX_CHARS = 200  # the lead_outcomes.reason column
VALUE_MINOR_MAX = 10**12  # ten billion in a two-decimal currency: more is a typo


class OutcomeKind(str, enum.Enum):
    CONTACTED = "contacted"  # first contact made; starts nothing, stops the clock
    QUALIFIED = "qualified"
    APPOINTMENT = "appointment"
    WON = "won"  # final: a deal, with its value
    LOST = "lost"  # final: no deal, with a reason
    BAD_LEAD = "bad_lead"  # final: the lead itself was bad (wrong number, fake...)


# A lead's conversion is decided by the first of these a reporter sends (conversion_stats).
FINAL_KINDS = frozenset({OutcomeKind.WON, OutcomeKind.LOST, OutcomeKind.BAD_LEAD})
VALUE_KINDS = frozenset({OutcomeKind.WON})
REASON_KINDS = frozenset({OutcomeKind.LOST, OutcomeKind.BAD_LEAD})


class OutcomeChannel(str, enum.Enum):
    API = "api"  # POST /v1/leads/{id}/outcomes (and an agent's close or contacted)
    POSTBACK = "postback"  # the signed GET/POST /v1/postbacks/outcome


class ReporterKind(str, enum.Enum):
    AGENT = "agent"  # an agent who owns or owned the lead
    BUYER = "buyer"  # a buyer (or team) the lead was sold and delivered to


Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=REASON_MAX_CHARS)]
ValueMinor = Annotated[int, msgspec.Meta(ge=0, le=VALUE_MINOR_MAX)]


class OutcomeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A report. ``value_minor`` (and ``currency``, the vertical's; default it) only for
    ``won``; ``reason`` only for ``lost`` and ``bad_lead``; ``occurred_at`` defaults to now."""

    kind: OutcomeKind
    value_minor: ValueMinor | None = None
    currency: Currency | None = None
    reason: Reason | None = None
    occurred_at: Annotated[dt.datetime, msgspec.Meta(tz=True)] | None = None  # aware


class Outcome(msgspec.Struct, kw_only=True):
    """One stored report: the first of its (lead, reporter, kind); a repeat answers this."""

    id: uuid.UUID
    lead_id: uuid.UUID
    party_id: uuid.UUID
    kind: OutcomeKind
    value_minor: int | None
    currency: str | None
    reason: str | None
    channel: OutcomeChannel
    occurred_at: dt.datetime
    recorded_at: dt.datetime


class FirstResponse(msgspec.Struct, kw_only=True):
    """How long a reporter took to first contact the lead: an agent from owning it to its
    first contact, a buyer from the sale to its first ``contacted`` report."""

    party_id: uuid.UUID
    reporter: ReporterKind
    first_response_ms: int | None  # None: no contact recorded yet


class Outcomes(msgspec.Struct, kw_only=True):
    """``GET /v1/leads/{id}/outcomes``: the caller's reports on the lead (an operator: all),
    oldest first; ``first_response_ms`` is the caller's (an operator: the quickest)."""

    lead_id: uuid.UUID
    items: list[Outcome]
    first_response_ms: int | None
    responses: list[FirstResponse]


class PostbackInfo(msgspec.Struct, kw_only=True):
    """What a party needs to sign postback URLs (``GET /v1/outcomes/postback``)."""

    party_id: uuid.UUID
    secret: str
    url_template: str
    methods: list[str]
    algorithm: str
    tolerance_s: int
