"""The leads report: leads received, how they ended and the money they made, grouped by any of
channel, source, vertical and UTC day (and always by currency).

``parse`` checks a request's parameters (a pure function: every failing one is named, nothing
is read); ``lead_report`` runs one SQL query, the same on PostgreSQL and SQLite but for the
day's expression.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.context import LEAD_SOLD, LEAD_UNSOLD
from exchange.auction.selling import SALE_DELIVERED
from exchange.channels.names import LeadChannel, channel_is, channel_of, sql_constant
from exchange.errors import ApiError, FieldProblem, validation_error
from exchange.reports.messages import LeadReport, LeadReportRow
from exchange.store.tables import leads, sales, verticals

GROUP_KEYS = ("channel", "source", "vertical", "day")
RANGE_MAX = dt.timedelta(days=366)  # a year of daily rows at most, leap years included
ROWS_MAX = 10_000  # groups in one answer; more is a 422 asking for a narrower report
BPS = 10_000  # basis points in a whole


@dataclasses.dataclass(frozen=True)
class ReportQuery:
    start: dt.datetime  # inclusive
    end: dt.datetime  # exclusive
    group_by: tuple[str, ...]
    channel: str | None = None
    source: str | None = None
    vertical: str | None = None
    supplier_id: uuid.UUID | None = None  # None: every supplier (operators only)


def _instant(name: str, value: str | None, problems: list[FieldProblem]) -> dt.datetime | None:
    if value is None or value == "":
        problems.append(FieldProblem(f"query.{name}", "required"))
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        problems.append(FieldProblem(f"query.{name}", "not an ISO 8601 instant, e.g. 2026-11-01T00:00:00Z"))
        return None
    if parsed.tzinfo is None:
        problems.append(FieldProblem(f"query.{name}", "needs a time zone, e.g. 2026-11-01T00:00:00Z"))
        return None
    return parsed.astimezone(dt.UTC)


def parse(
    start: str | None, end: str | None, group_by: list[str] | None, *, channel: str | None = None,
    source: str | None = None, vertical: str | None = None, supplier_id: uuid.UUID | None = None,
) -> ReportQuery:
    """The report asked for, or a 422 naming every failing parameter. ``group_by`` items may
    each hold several keys separated by commas (``group_by=channel,day``)."""
    problems: list[FieldProblem] = []
    begin = _instant("from", start, problems)
    until = _instant("to", end, problems)
    if begin is not None and until is not None:
        if begin >= until:
            problems.append(FieldProblem("query.from", "must be before to"))
        elif until - begin > RANGE_MAX:
            problems.append(FieldProblem("query.to", f"at most {RANGE_MAX.days} days after from"))
    keys: list[str] = []
    for item in group_by or []:
        for key in (k.strip() for k in item.split(",")):
            if key not in GROUP_KEYS:
                problems.append(FieldProblem("query.group_by", f"{key!r} is not one of {', '.join(GROUP_KEYS)}"))
            elif key not in keys:
                keys.append(key)
    names = {c.value for c in LeadChannel}
    if channel is not None and channel not in names:
        problems.append(FieldProblem("query.channel", f"one of {', '.join(sorted(names))}"))
    if problems:
        raise validation_error(problems)
    assert begin is not None and until is not None
    return ReportQuery(
        start=begin, end=until, group_by=tuple(k for k in GROUP_KEYS if k in keys), channel=channel,
        source=source, vertical=vertical, supplier_id=supplier_id,
    )  # fmt: skip


def _day(conn: AsyncConnection) -> sa.ColumnElement[str]:
    """The UTC day a lead arrived, as YYYY-MM-DD."""
    if conn.dialect.name == "postgresql":
        utc, iso_day = sql_constant("UTC"), sql_constant("YYYY-MM-DD")
        return sa.func.to_char(sa.func.timezone(utc, leads.c.created_at), iso_day)
    # SQLite keeps UTC datetimes naive ("YYYY-MM-DD HH:MM:SS.ffffff", store.types.UTCDateTime).
    return sa.func.date(leads.c.created_at)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """Leads meeting ``condition``, each once however many sales it had."""
    return sa.func.count(sa.distinct(sa.case((condition, leads.c.id))))


def _sum(column: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(column), 0)


async def lead_report(conn: AsyncConnection, q: ReportQuery, *, with_prices: bool) -> LeadReport:
    """One query: the range's real leads, each joined to its delivered sales (a shared lead
    has several), grouped by the asked keys and the vertical's currency (every sale of a lead
    is in it: the auction runs in the vertical's currency)."""
    key_columns: dict[str, sa.ColumnElement[Any]] = {
        "channel": channel_of(leads.c.channel),
        "source": leads.c.source,
        "vertical": verticals.c.slug,
        "day": _day(conn),
    }
    keys = [key_columns[k].label(k) for k in q.group_by]
    currency = verticals.c.currency.label("currency")
    query = (
        sa.select(
            *keys, currency,
            sa.func.count(sa.distinct(leads.c.id)).label("received"),
            _count(leads.c.status == LEAD_SOLD).label("sold"),
            _count(leads.c.status == LEAD_UNSOLD).label("unsold"),
            _sum(sales.c.price_minor).label("revenue"),
            _sum(sales.c.payout_minor).label("payout"),
        )
        .select_from(leads)
        .join(verticals, verticals.c.id == leads.c.vertical_id)
        .outerjoin(sales, sa.and_(sales.c.lead_id == leads.c.id, sales.c.status == SALE_DELIVERED))
        .where(leads.c.created_at >= q.start, leads.c.created_at < q.end, leads.c.test.is_(False))
        .group_by(*(key_columns[k] for k in q.group_by), verticals.c.currency)
        .order_by(*(sa.nulls_first(key_columns[k]) for k in q.group_by), verticals.c.currency)
        .limit(ROWS_MAX + 1)
    )  # fmt: skip
    if q.supplier_id is not None:
        query = query.where(leads.c.supplier_id == q.supplier_id)
    if q.channel is not None:
        query = query.where(channel_is(leads.c.channel, q.channel))
    if q.source is not None:
        query = query.where(leads.c.source == q.source)
    if q.vertical is not None:
        query = query.where(verticals.c.slug == q.vertical)
    rows = (await conn.execute(query)).all()
    if len(rows) > ROWS_MAX:
        raise ApiError(
            422, "too_many_groups", f"more than {ROWS_MAX} groups: narrow the range or filter",
            fields=[FieldProblem("query.group_by", f"at most {ROWS_MAX} groups")],
        )  # fmt: skip
    return LeadReport(
        from_=q.start, to=q.end, group_by=list(q.group_by),
        rows=[_row(r, q.group_by, with_prices) for r in rows],
    )  # fmt: skip


def _row(r: Any, group_by: tuple[str, ...], with_prices: bool) -> LeadReportRow:
    received, sold, unsold = int(r.received), int(r.sold), int(r.unsold)
    revenue, payout = int(r.revenue), int(r.payout)
    return LeadReportRow(
        **{k: getattr(r, k) for k in group_by},
        currency=r.currency, received=received, sold=sold, unsold=unsold,
        other=received - sold - unsold,
        sold_rate_bps=sold * BPS // received if received else 0,
        revenue_minor=revenue if with_prices else None, payout_minor=payout,
        margin_minor=revenue - payout if with_prices else None,
    )  # fmt: skip
