"""Periods in the database: the share lock every post takes on its month, and closing.

A period row appears with the first entry of its month. A post takes a share lock on it (FOR
SHARE on PostgreSQL) and refuses a closed month; a close takes the row lock, so it waits for the
posts in flight and none lands after it. SQLite writes one transaction at a time: no race.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.errors import FieldProblem
from exchange.ledger.errors import InvalidEntry, PeriodClosed, PeriodNotOver
from exchange.ledger.periods import is_period, period_end
from exchange.ledger.records import PeriodInfo
from exchange.store.db import dialect_insert
from exchange.store.tables import ledger_periods


async def close_period(
    conn: AsyncConnection, period: str, *, now: dt.datetime, by: uuid.UUID | None = None
) -> PeriodInfo:
    """Lock a finished month: no entry lands in it afterwards. Closing twice is harmless."""
    if not is_period(period):
        raise InvalidEntry([FieldProblem("period", "a UTC month, YYYY-MM")])
    if period_end(period) > now:
        raise PeriodNotOver(period)
    await conn.execute(
        dialect_insert(conn, ledger_periods).values(period=period).on_conflict_do_nothing()
    )
    # Row lock: waits for posts in flight in this period (they hold a share lock) to finish.
    await conn.execute(
        ledger_periods.update()
        .where(ledger_periods.c.period == period, ledger_periods.c.closed_at.is_(None))
        .values(closed_at=now, closed_by=by)
    )
    row = (
        await conn.execute(sa.select(ledger_periods).where(ledger_periods.c.period == period))
    ).one()
    return _period(row)


async def list_periods(conn: AsyncConnection) -> list[PeriodInfo]:
    rows = await conn.execute(sa.select(ledger_periods).order_by(ledger_periods.c.period))
    return [_period(row) for row in rows]


def _period(row: sa.Row) -> PeriodInfo:
    return PeriodInfo(
        period=row.period,
        closed=row.closed_at is not None,
        closed_at=row.closed_at,
        closed_by=row.closed_by,
    )


async def lock_open_period(conn: AsyncConnection, period: str) -> None:
    await conn.execute(
        dialect_insert(conn, ledger_periods).values(period=period).on_conflict_do_nothing()
    )
    # FOR SHARE: posts do not wait for each other, but a close waits for them.
    query = sa.select(ledger_periods.c.closed_at).where(ledger_periods.c.period == period)
    closed_at = (await conn.execute(query.with_for_update(read=True))).scalar_one()
    if closed_at is not None:
        raise PeriodClosed(period)
