"""What the reports API answers (msgspec Structs)."""

from __future__ import annotations

import datetime as dt

import msgspec
from msgspec import UNSET, UnsetType


class LeadReportRow(msgspec.Struct, kw_only=True):
    """One group of leads. Only the keys the report groups by are present (``source`` may be
    null: leads sent without one); money is in minor units of ``currency``."""

    channel: str | UnsetType = UNSET  # api for the native ping/post API
    source: str | None | UnsetType = UNSET
    vertical: str | UnsetType = UNSET
    day: str | UnsetType = UNSET  # YYYY-MM-DD, the UTC day the lead arrived
    currency: str
    received: int  # leads taken in (test leads never count)
    sold: int
    unsold: int
    other: int  # neither yet (a post still being walked)
    sold_rate_bps: int  # sold / received in basis points, rounded down
    # What buyers paid for delivered sales, what suppliers earn for them, and the exchange's
    # part: null for a supplier's key (a supplier sees its payouts, not buyers' prices).
    revenue_minor: int | None
    payout_minor: int
    margin_minor: int | None


class LeadReport(msgspec.Struct, kw_only=True):
    from_: dt.datetime = msgspec.field(name="from")
    to: dt.datetime
    group_by: list[str]
    rows: list[LeadReportRow]
