"""Atomic cap reservations.

One counter row per (campaign, window). Reserving one lead is, per cap window, a single
statement: insert the row at (1, price) or add (1, price) to it, but only while the result stays
within the cap (``INSERT ... ON CONFLICT DO UPDATE ... WHERE guard RETURNING``). No row back
means the cap would be exceeded. That is safe at READ COMMITTED on PostgreSQL (a concurrent
updater waits for the row, then the guard is re-checked on the new value) and trivially on
SQLite (one writer). A campaign's caps are reserved together: a breach of its week cap gives
back the increment already made to its day cap (the transaction holds that row, so nobody saw
it), without a savepoint's two extra round trips.

Counters include held capacity: a ping that offers a bid holds it until the post or expiry.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import reasons
from exchange.matching.caps import Cap, CapBreach, Usage, window_key
from exchange.store.db import insert_for
from exchange.store.tables import cap_counters


class Hold(msgspec.Struct, frozen=True):
    """What one reservation added to one window: to release it later."""

    campaign_id: str
    window_key: str
    spend_minor: int


async def read_usage(
    conn: AsyncConnection, wanted: Iterable[tuple[str, str]]
) -> dict[str, dict[str, tuple[int, int]]]:
    """Usage per campaign per window key, for the (campaign_id, window_key) pairs asked."""
    pairs = list(wanted)
    usage: dict[str, dict[str, tuple[int, int]]] = {}
    if not pairs:
        return usage
    if conn.dialect.name == "postgresql":
        # Two list parameters, whatever the number of pairs: one statement text that psycopg
        # and PostgreSQL prepare once (an IN list of a few hundred pairs was a new text per
        # lead, parsed by the driver and planned by the server every time). It may return a
        # few rows nobody asked for (a campaign's other window with a wanted key): skipped.
        asked = set(pairs)
        params = {"ids": ",".join({c for c, _ in asked}), "keys": ",".join({k for _, k in asked})}
        for campaign_id, key, count, spend in await conn.execute(_USAGE_PG, params):
            if (campaign_id, key) in asked:
                usage.setdefault(campaign_id, {})[key] = (count, spend)
        return usage
    keys = [(uuid.UUID(c), k) for c, k in pairs]
    query = sa.select(
        cap_counters.c.campaign_id, cap_counters.c.window_key, cap_counters.c.count,
        cap_counters.c.spend_minor,
    ).where(sa.tuple_(cap_counters.c.campaign_id, cap_counters.c.window_key).in_(keys))  # fmt: skip
    for row in await conn.execute(query):
        usage.setdefault(str(row.campaign_id), {})[row.window_key] = (row.count, row.spend_minor)
    return usage


_USAGE_PG = sa.text(
    "SELECT campaign_id::text, window_key, count, spend_minor FROM cap_counters"
    " WHERE campaign_id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))"
    " AND window_key = ANY(string_to_array(:keys, ','))"
)  # the lists travel as one comma-joined text each: the driver dumps a list item by item


def windows(
    campaign_id: str, caps: Sequence[Cap], tz: str, now: dt.datetime
) -> list[tuple[str, str]]:
    return [(campaign_id, window_key(cap.window, tz, now)) for cap in caps]


@functools.cache
def _reserve_statement(dialect_name: str, count_capped: bool, spend_capped: bool) -> Any:
    """The guarded upsert for one window, built once per shape; the numbers are bound at
    execution, so SQLAlchemy compiles it once instead of per lead."""
    guard = sa.true()
    if count_capped:
        guard = sa.and_(guard, cap_counters.c.count + 1 <= sa.bindparam("max_count", type_=sa.Integer))
    if spend_capped:
        spend = cap_counters.c.spend_minor + sa.bindparam("price", type_=sa.BigInteger)
        guard = sa.and_(guard, spend <= sa.bindparam("max_spend", type_=sa.BigInteger))
    return (
        insert_for(dialect_name, cap_counters)
        .on_conflict_do_update(
            index_elements=[cap_counters.c.campaign_id, cap_counters.c.window_key],
            set_={
                "count": cap_counters.c.count + 1,
                "spend_minor": cap_counters.c.spend_minor + sa.bindparam("price", type_=sa.BigInteger),
            },
            where=guard,
        )
        .returning(cap_counters.c.count)
    )


async def reserve(
    conn: AsyncConnection,
    campaign_id: str,
    caps: Sequence[Cap],
    tz: str,
    price_minor: int,
    now: dt.datetime,
) -> list[Hold] | CapBreach:
    """Hold one lead at ``price_minor`` in every cap window of the campaign, or nothing.

    Call inside a write transaction; reserve several campaigns in a fixed order (by id) so
    concurrent transactions lock rows in the same order and cannot deadlock.
    """
    if not caps:
        return []
    planned = sorted(
        ((window_key(cap.window, tz, now), cap) for cap in caps), key=lambda item: item[0]
    )
    for key, cap in planned:  # a cap the lead alone would break needs no round trip
        if cap.max_count is not None and cap.max_count < 1:
            return CapBreach(
                reason=reasons.cap_reached(cap.window.value),
                window_key=key,
                used=0,
                limit=cap.max_count,
            )
        if cap.max_spend_minor is not None and price_minor > cap.max_spend_minor:
            return CapBreach(
                reason=reasons.budget_reached(cap.window.value), window_key=key, used=0,
                limit=cap.max_spend_minor,
            )  # fmt: skip
    cid = uuid.UUID(campaign_id)
    holds: list[Hold] = []
    for key, cap in planned:
        stmt = _reserve_statement(conn.dialect.name, cap.max_count is not None, cap.max_spend_minor is not None)
        params = {"campaign_id": cid, "window_key": key, "count": 1, "spend_minor": price_minor,
                  "price": price_minor, "max_count": cap.max_count, "max_spend": cap.max_spend_minor}  # fmt: skip
        if (await conn.execute(stmt, params)).first() is None:
            await release(conn, holds)  # the windows this campaign took before this one
            row = (
                await conn.execute(
                    sa.select(cap_counters.c.count, cap_counters.c.spend_minor).where(
                        cap_counters.c.campaign_id == cid, cap_counters.c.window_key == key
                    )
                )
            ).first()
            count, spend = (row.count, row.spend_minor) if row else (0, 0)
            if cap.max_count is not None and count + 1 > cap.max_count:
                return CapBreach(
                    reason=reasons.cap_reached(cap.window.value), window_key=key, used=count,
                    limit=cap.max_count,
                )  # fmt: skip
            return CapBreach(
                reason=reasons.budget_reached(cap.window.value), window_key=key, used=spend,
                limit=cap.max_spend_minor or 0,
            )  # fmt: skip
        holds.append(Hold(campaign_id, key, price_minor))
    return holds


async def release(conn: AsyncConnection, holds: Iterable[Hold]) -> None:
    """Give held capacity back (the ping expired, the buyer rejected the post)."""
    for hold in sorted(holds, key=lambda h: (h.campaign_id, h.window_key)):
        await conn.execute(
            cap_counters.update()
            .where(
                cap_counters.c.campaign_id == uuid.UUID(hold.campaign_id),
                cap_counters.c.window_key == hold.window_key,
            )
            .values(
                count=sa.func.max(cap_counters.c.count - 1, 0)
                if conn.dialect.name == "sqlite"
                else sa.func.greatest(cap_counters.c.count - 1, 0),
                spend_minor=sa.func.max(cap_counters.c.spend_minor - hold.spend_minor, 0)
                if conn.dialect.name == "sqlite"
                else sa.func.greatest(cap_counters.c.spend_minor - hold.spend_minor, 0),
            )
        )


def as_usage(rows: dict[str, tuple[int, int]] | None) -> Usage:
    return rows or {}
