"""Wire messages of lead intake (what suppliers send and get back)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import msgspec

MAX_KEY_CHARS = 64


class Consent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Consent and provenance: stored exactly as sent and handed to the buyer."""

    tcpa_text: str | None = None
    trustedform_cert_url: str | None = None
    jornaya_leadid: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    landing_page_url: str | None = None
    consented_at: str | None = None  # ISO 8601, as the form recorded it


class SubIds(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The supplier's own tracking ids (affiliate, campaign, creative...)."""

    sub1: str | None = None
    sub2: str | None = None
    sub3: str | None = None
    sub4: str | None = None
    sub5: str | None = None


class LeadIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A direct post: the whole lead in one call."""

    vertical: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS)]
    fields: dict[Annotated[str, msgspec.Meta(max_length=256)], Any]
    source: str | None = None
    sub_ids: SubIds | None = None
    consent: Consent | None = None
    test: bool = False


class SourcedLeadIn(LeadIn, kw_only=True):
    """A lead that came through an intake adapter (exchange.channels), not the native API: it
    carries the channel and source it arrived by. Never decoded from a request body."""

    channel: str | None = None
    intake_source_id: uuid.UUID | None = None


class LeadView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A stored lead as its supplier (or an operator) sees it."""

    lead_id: uuid.UUID
    status: str
    vertical: str
    supplier_id: uuid.UUID
    created_at: dt.datetime
    fields: dict[str, Any]
    # How it arrived: api (the native ping/post API), form, google_ads, meta, csv, email, call.
    channel: str
    pii: dict[str, Any] | None = None
    source: str | None = None
    sub_ids: SubIds | None = None
    consent: Consent | None = None
    test: bool = False
    # The lead's score (0-100) and priority band (exchange.scoring), shown to operators only.
    score: int | None = None
    priority: str | None = None
