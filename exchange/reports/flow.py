"""The flow: what the exchange did in its last minutes, for the operator's live view.

``flow`` answers ``GET /v1/ops/flow`` from the database (leads and sales per UTC minute in one
query; team queues and outboxes in two more) and from this process's Prometheus collectors
(pings per live-bid buyer: answers, timeouts, latency since the process started: reading
every ping trace of the window is too dear for a view refreshed every few seconds). Every list
is bounded; the minute buckets by ``MINUTES_MAX``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import metrics
from exchange.auction.context import LEAD_SOLD, LEAD_UNSOLD
from exchange.auction.selling import SALE_DELIVERED
from exchange.channels.names import channel_of, sql_constant
from exchange.errors import FieldProblem, validation_error
from exchange.reports.messages import (
    BrokerQueue,
    BuyerPings,
    Flow,
    FlowCurrency,
    FlowMinute,
    FlowTotals,
    Outbox,
    RecentLead,
    TeamQueue,
)
from exchange.store.tables import (
    crm_syncs,
    deliveries,
    lead_owners,
    leads,
    notifications,
    parties,
    sales,
    verticals,
)

MINUTES_DEFAULT = 60
MINUTES_MAX = 1440  # a day of minute buckets
BUYERS_MAX = 50  # live-bid buyers listed, the most pinged first
TEAMS_MAX = 50  # team queues listed, the longest first
RECENT_MAX = 20  # the last leads listed
BPS = 10_000  # basis points in a whole
PERCENTILE = 0.95
MINUTE_FORMAT = "%Y-%m-%d %H:%M"  # how both databases write a minute (UTC)
PENDING = "pending"  # the outboxes' waiting status (deliveries, notifications, crm_syncs)
TEAM_WAITING = ("queued", "offered")  # lead_owners statuses still looking for an agent
STARTED_AT = dt.datetime.now(dt.UTC)  # the collectors count from (about) the import
# A lead's id (a UUIDv7, exchange.ids) and its created_at are read from the clock in the same
# request; the window's leads are found by id first (the primary key's index: leads have no
# index on created_at alone), with this much room for the gap between the two.
ID_SLACK = dt.timedelta(minutes=5)


def parse_minutes(minutes: int | None) -> int:
    if minutes is None:
        return MINUTES_DEFAULT
    if not 1 <= minutes <= MINUTES_MAX:
        raise validation_error([FieldProblem("query.minutes", f"between 1 and {MINUTES_MAX}")])
    return minutes


def window_start(now: dt.datetime, minutes: int) -> dt.datetime:
    """The first minute shown: ``minutes`` whole minutes, the current (partial) one last."""
    this_minute = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return this_minute - dt.timedelta(minutes=minutes - 1)


def id_floor(at: dt.datetime) -> uuid.UUID:
    """The smallest UUIDv7 a lead made at ``at`` or later can have (exchange.ids' layout)."""
    unix_ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=(unix_ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | 0b10 << 62)


def _minute(conn: AsyncConnection) -> sa.ColumnElement[str]:
    """The UTC minute a lead arrived, as YYYY-MM-DD HH:MM."""
    if conn.dialect.name == "postgresql":
        utc, pattern = sql_constant("UTC"), sql_constant("YYYY-MM-DD HH24:MI")
        return sa.func.to_char(sa.func.timezone(utc, leads.c.created_at), pattern)
    # SQLite keeps UTC datetimes naive ("YYYY-MM-DD HH:MM:SS.ffffff", store.types.UTCDateTime).
    return sa.func.strftime(sql_constant(MINUTE_FORMAT), leads.c.created_at)


def _leads_count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """Leads meeting ``condition``, each once however many sales it had."""
    return sa.func.count(sa.distinct(sa.case((condition, leads.c.id))))


async def minute_rows(conn: AsyncConnection, start: dt.datetime) -> list[Any]:
    """One query: the window's real leads, each joined to its delivered sales, by minute and
    currency (a lead's sales are all in its vertical's currency)."""
    minute = _minute(conn)
    query = (
        sa.select(
            minute.label("minute"), verticals.c.currency,
            sa.func.count(sa.distinct(leads.c.id)).label("received"),
            _leads_count(leads.c.status == LEAD_SOLD).label("sold"),
            _leads_count(leads.c.status == LEAD_UNSOLD).label("unsold"),
            sa.func.count(sales.c.id).label("sales"),
            sa.func.coalesce(sa.func.sum(sales.c.price_minor), 0).label("revenue"),
        )
        .select_from(leads)
        .join(verticals, verticals.c.id == leads.c.vertical_id)
        .outerjoin(sales, sa.and_(sales.c.lead_id == leads.c.id, sales.c.status == SALE_DELIVERED))
        .where(leads.c.id >= id_floor(start - ID_SLACK), leads.c.created_at >= start, leads.c.test.is_(False))
        .group_by(minute, verticals.c.currency)
    )  # fmt: skip
    return list((await conn.execute(query)).all())


def fold_minutes(rows: Iterable[Any], start: dt.datetime, minutes: int) -> tuple[list[FlowMinute], FlowTotals]:
    """Every minute of the window (empty ones too), and the window's totals by currency."""
    buckets = {
        start + dt.timedelta(minutes=i): FlowMinute(
            minute=start + dt.timedelta(minutes=i), received=0, sold=0, unsold=0, sales=0, revenue_minor={}
        )
        for i in range(minutes)
    }  # fmt: skip
    money: dict[str, list[int]] = {}  # currency -> [sales, revenue]
    for r in rows:
        at = dt.datetime.strptime(r.minute, MINUTE_FORMAT).replace(tzinfo=dt.UTC)
        bucket = buckets.get(at)
        if bucket is None:  # a lead stamped after `now` was read (another process's clock)
            continue
        bucket.received += int(r.received)
        bucket.sold += int(r.sold)
        bucket.unsold += int(r.unsold)
        bucket.sales += int(r.sales)
        if int(r.sales):
            bucket.revenue_minor[r.currency] = bucket.revenue_minor.get(r.currency, 0) + int(r.revenue)
            total = money.setdefault(r.currency, [0, 0])
            total[0] += int(r.sales)
            total[1] += int(r.revenue)
    shown = list(buckets.values())
    received = sum(b.received for b in shown)
    sold = sum(b.sold for b in shown)
    unsold = sum(b.unsold for b in shown)
    totals = FlowTotals(
        received=received, sold=sold, unsold=unsold, other=received - sold - unsold,
        sold_rate_bps=sold * BPS // received if received else 0,
        by_currency=[
            FlowCurrency(currency=c, sales=n, revenue_minor=v, average_price_minor=v // n if n else 0)
            for c, (n, v) in sorted(money.items())
        ],
    )  # fmt: skip
    return shown, totals


def ping_stats(latency: Any = None, answers: Any = None) -> list[BuyerPings]:
    """Each live-bid buyer's pings as this process's collectors hold them (``metrics.PINGS``
    by outcome and ``metrics.PING_LATENCY``), the most pinged first, at most ``BUYERS_MAX``.
    Names are filled in later."""
    latency = latency if latency is not None else metrics.PING_LATENCY
    answers = answers if answers is not None else metrics.PINGS
    outcomes: dict[str, dict[str, float]] = {}
    for family in answers.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                by = outcomes.setdefault(s.labels["buyer"], {})
                by[s.labels["outcome"]] = by.get(s.labels["outcome"], 0) + s.value
    timed: dict[str, dict[str, Any]] = {}  # buyer -> count, sum, buckets [(le, cumulative)]
    for family in latency.collect():
        for s in family.samples:
            seen = timed.setdefault(s.labels["buyer"], {"count": 0.0, "sum": 0.0, "buckets": []})
            if s.name.endswith("_count"):
                seen["count"] = s.value
            elif s.name.endswith("_sum"):
                seen["sum"] = s.value
            elif s.name.endswith("_bucket"):
                seen["buckets"].append((float(s.labels["le"]), s.value))
    rows = []
    for buyer in set(outcomes) | set(timed):
        by = outcomes.get(buyer, {})
        seen = timed.get(buyer, {"count": 0.0, "sum": 0.0, "buckets": []})
        count = int(seen["count"])
        rows.append(BuyerPings(
            buyer_id=buyer, name=None, pings=int(sum(by.values())), bids=int(by.get("bid", 0)),
            rejected=int(by.get("rejected", 0)), errors=int(by.get("error", 0)),
            timeouts=int(by.get("timeout", 0)),
            latency_avg_ms=round(seen["sum"] * 1000 / count) if count else None,
            latency_p95_ms=_percentile_ms(seen["buckets"], count),
        ))  # fmt: skip
    rows.sort(key=lambda b: (-b.pings, b.buyer_id))
    return rows[:BUYERS_MAX]


def _percentile_ms(buckets: list[tuple[float, float]], count: int) -> int | None:
    """The upper bound of the bucket holding the 95th percentile (a histogram knows no more);
    None when nothing was timed or it lies past the last finite bucket."""
    if not count:
        return None
    wanted = math.ceil(count * PERCENTILE)
    for bound, cumulative in sorted(buckets):
        if cumulative >= wanted:
            return None if math.isinf(bound) else round(bound * 1000)
    return None


async def _names(conn: AsyncConnection, ids: Iterable[Any]) -> dict[str, str]:
    wanted = {str(i) for i in ids}
    keys = []
    for value in wanted:
        try:
            keys.append(uuid.UUID(value))
        except ValueError:  # a collector label that is no party id
            continue
    if not keys:
        return {}
    rows = await conn.execute(sa.select(parties.c.id, parties.c.name).where(parties.c.id.in_(keys)))
    return {str(r.id): r.name for r in rows}


async def team_queues(conn: AsyncConnection) -> list[TeamQueue]:
    """Leads waiting for an agent, by team: the longest queues first."""
    waiting = sa.func.count()
    queued = sa.func.count(sa.case((lead_owners.c.status == "queued", 1)))
    rows = await conn.execute(
        sa.select(
            lead_owners.c.team_id, parties.c.name, queued.label("queued"),
            (waiting - queued).label("offered"),
            sa.func.min(sa.case((lead_owners.c.status == "queued", lead_owners.c.queued_at))).label("oldest"),
        )
        .join(parties, parties.c.id == lead_owners.c.team_id)
        .where(lead_owners.c.status.in_(TEAM_WAITING))
        .group_by(lead_owners.c.team_id, parties.c.name)
        .order_by(queued.desc(), waiting.desc(), lead_owners.c.team_id)
        .limit(TEAMS_MAX)
    )  # fmt: skip
    return [
        TeamQueue(team_id=r.team_id, name=r.name, queued=int(r.queued), offered=int(r.offered),
                  oldest_queued_at=_aware(r.oldest))  # fmt: skip
        for r in rows
    ]


def _aware(value: Any) -> dt.datetime | None:
    """A MIN() over a UTCDateTime column comes back untyped on SQLite (a string)."""
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


async def outboxes(conn: AsyncConnection) -> list[Outbox]:
    """The outboxes still to send: one query of scalar subqueries (each on its status index)."""
    tables = {"deliveries": deliveries, "notifications": notifications, "crm_syncs": crm_syncs}
    columns = []
    for name, table in tables.items():
        pending = table.c.status == PENDING
        columns.append(sa.select(sa.func.count()).where(pending).scalar_subquery().label(f"{name}_n"))
        columns.append(sa.select(sa.func.min(table.c.created_at)).where(pending).scalar_subquery().label(f"{name}_at"))  # fmt: skip
    row = (await conn.execute(sa.select(*columns))).one()
    return [
        Outbox(name=name, pending=int(getattr(row, f"{name}_n")), oldest_at=_aware(getattr(row, f"{name}_at")))
        for name in tables
    ]


async def recent_leads(conn: AsyncConnection) -> list[RecentLead]:
    """The last leads taken in, by id (UUIDv7: time-ordered, so the primary key's index)."""
    rows = await conn.execute(
        sa.select(
            leads.c.id, leads.c.created_at, leads.c.status, verticals.c.slug,
            channel_of(leads.c.channel).label("channel"), leads.c.supplier_id, parties.c.name, leads.c.test,
        )
        .join(verticals, verticals.c.id == leads.c.vertical_id)
        .join(parties, parties.c.id == leads.c.supplier_id)
        .order_by(leads.c.id.desc())
        .limit(RECENT_MAX)
    )  # fmt: skip
    return [
        RecentLead(lead_id=r.id, created_at=r.created_at, status=r.status, vertical=r.slug, channel=r.channel,
                   supplier_id=r.supplier_id, supplier=r.name, test=r.test)  # fmt: skip
        for r in rows
    ]


async def broker_queues(broker: Any, redis_url: str | None) -> list[BrokerQueue] | None:
    """The broker's queues (``metrics.queue_depth``) within the scrape's time limit, or None."""
    try:
        family = await asyncio.wait_for(
            asyncio.to_thread(metrics.queue_depth, broker, redis_url), metrics.SOURCE_TIMEOUT_S
        )
    except Exception:  # a slow or broken broker leaves its part out, never the whole view
        return None
    depth: dict[str, dict[str, int]] = {}
    for s in family.samples:
        depth.setdefault(s.labels["queue"], {})[s.labels["state"]] = int(s.value)
    return [
        BrokerQueue(queue=q, ready=d.get("ready", 0), delayed=d.get("delayed", 0), dead=d.get("dead", 0))
        for q, d in depth.items()
    ]


async def flow(
    conn: AsyncConnection, now: dt.datetime, minutes: int, *, buyers: list[BuyerPings],
    broker: list[BrokerQueue] | None,
) -> Flow:  # fmt: skip
    start = window_start(now, minutes)
    buckets, totals = fold_minutes(await minute_rows(conn, start), start, minutes)
    names = await _names(conn, (b.buyer_id for b in buyers))
    for b in buyers:
        b.name = names.get(b.buyer_id)
    return Flow(
        now=now, minutes=minutes, from_=start, buckets=buckets, totals=totals, buyers=buyers,
        buyers_since=STARTED_AT, teams=await team_queues(conn), outboxes=await outboxes(conn),
        broker=broker, recent=await recent_leads(conn),
    )  # fmt: skip
