"""What the reports API answers (msgspec Structs)."""

from __future__ import annotations

import datetime as dt
import uuid

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


class FlowMinute(msgspec.Struct, kw_only=True):
    """One UTC minute of the flow: the leads that arrived in it and their delivered sales."""

    minute: dt.datetime  # the minute's start
    received: int
    sold: int
    unsold: int
    sales: int  # delivered sales of those leads (a shared lead has several)
    revenue_minor: dict[str, int]  # what buyers paid for them, by currency ({} when none)


class FlowCurrency(msgspec.Struct, kw_only=True):
    currency: str
    sales: int
    revenue_minor: int
    average_price_minor: int  # revenue / sales, rounded down; 0 without sales


class FlowTotals(msgspec.Struct, kw_only=True):
    received: int
    sold: int
    unsold: int
    other: int  # neither yet (a post still being walked)
    sold_rate_bps: int  # sold / received in basis points, rounded down
    by_currency: list[FlowCurrency]


class BuyerPings(msgspec.Struct, kw_only=True):
    """A live-bid buyer's answers to pings, as this process counted them since it started."""

    buyer_id: str
    name: str | None  # null: no party with that id (a simulated buyer)
    pings: int
    bids: int
    rejected: int
    errors: int
    timeouts: int
    latency_avg_ms: int | None  # over the answers timed (a timeout counts at its cut-off)
    latency_p95_ms: int | None  # the upper bound of the histogram bucket holding the 95th


class TeamQueue(msgspec.Struct, kw_only=True):
    team_id: uuid.UUID
    name: str | None
    queued: int  # leads waiting in the team's queue for an eligible agent
    offered: int  # leads with offers out to agents
    oldest_queued_at: dt.datetime | None


class Outbox(msgspec.Struct, kw_only=True):
    name: str  # deliveries, notifications, crm_syncs
    pending: int  # still to send (first try or a retry)
    oldest_at: dt.datetime | None  # when the oldest pending one was written


class BrokerQueue(msgspec.Struct, kw_only=True):
    queue: str
    ready: int
    delayed: int
    dead: int


class RecentLead(msgspec.Struct, kw_only=True):
    """One of the last leads taken in, test leads included, for the operator to open."""

    lead_id: uuid.UUID
    created_at: dt.datetime
    status: str
    vertical: str
    channel: str  # api for the native ping/post API
    supplier_id: uuid.UUID
    supplier: str  # the supplier's name
    test: bool


class Flow(msgspec.Struct, kw_only=True):
    """``GET /v1/ops/flow``: the last minutes of the exchange at a glance (operators)."""

    now: dt.datetime
    minutes: int
    from_: dt.datetime = msgspec.field(name="from")
    buckets: list[FlowMinute]  # one per minute, oldest first, the current (partial) one last
    totals: FlowTotals
    buyers: list[BuyerPings]  # the most pinged first, at most 50
    buyers_since: dt.datetime  # when this process started counting
    teams: list[TeamQueue]  # the longest queues first, at most 50
    outboxes: list[Outbox]
    broker: list[BrokerQueue] | None  # null: the broker could not be read in time
    recent: list[RecentLead]  # the last 20 leads, newest first
