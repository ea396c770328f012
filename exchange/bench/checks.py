"""Correctness after a run: what load must never break. Each check says what it counted.

- every lead in a terminal state (sold or unsold), no ping left mid-post;
- no cap exceeded: per campaign and cap window, the counters and the sales that hold capacity
  are within the cap's limit;
- the ledger: trial balance zero, reconciliation with no anomaly;
- every sale settled: none left ``delivering``, no delivery ``pending``, every sold lead has a
  delivered sale.
"""

from __future__ import annotations

from collections import Counter

import msgspec
import sqlalchemy as sa

from exchange.matching.caps import Cap, CapWindow, window_key
from exchange.settings import Settings
from exchange.store.tables import campaigns, cap_counters, deliveries, leads, pings, sales

TERMINAL_LEAD_STATUSES = ("sold", "unsold")
HOLDING_SALE_STATUSES = ("delivering", "delivered", "returned")  # these keep their capacity


class Check(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str


async def run_checks(settings: Settings) -> list[Check]:
    from exchange.store.db import Database

    db = Database(settings)
    try:
        async with db.read() as conn:
            return [
                await _terminal(conn),
                await _caps(conn),
                *await _ledger(conn),
                await _sales(conn),
            ]
    finally:
        await db.dispose()


async def _counts(conn: sa.ext.asyncio.AsyncConnection, column: sa.Column) -> Counter[str]:
    rows = await conn.execute(sa.select(column, sa.func.count()).group_by(column))
    return Counter({str(value): int(n) for value, n in rows})


async def _terminal(conn: sa.ext.asyncio.AsyncConnection) -> Check:
    statuses = await _counts(conn, leads.c.status)
    stuck = sum(n for s, n in statuses.items() if s not in TERMINAL_LEAD_STATUSES)
    posting = (await _counts(conn, pings.c.status)).get("posting", 0)
    detail = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) or "no leads"
    return Check(name="every lead terminal", ok=stuck == 0 and posting == 0,
                 detail=f"{sum(statuses.values())} leads: {detail}; pings mid-post {posting}")  # fmt: skip


async def _caps(conn: sa.ext.asyncio.AsyncConnection) -> Check:
    limits: dict[tuple[str, str], int] = {}  # (campaign, window name) -> max count
    zones: dict[str, str] = {}
    for row in await conn.execute(sa.select(campaigns.c.id, campaigns.c.timezone, campaigns.c.caps)):
        zones[str(row.id)] = row.timezone
        for cap in msgspec.convert(row.caps or [], list[Cap]):
            if cap.max_count is not None:
                limits[(str(row.id), cap.window.value)] = cap.max_count
    over: list[str] = []
    checked = 0
    for row in await conn.execute(sa.select(cap_counters.c.campaign_id, cap_counters.c.window_key, cap_counters.c.count)):
        limit = limits.get((str(row.campaign_id), row.window_key.split(":", 1)[0]))
        checked += 1
        if limit is not None and row.count > limit:
            over.append(f"counter {row.campaign_id} {row.window_key}: {row.count} > {limit}")
    held: Counter[tuple[str, str, str]] = Counter()
    query = sa.select(sales.c.campaign_id, sales.c.created_at).where(sales.c.status.in_(HOLDING_SALE_STATUSES))
    for row in await conn.execute(query):
        campaign = str(row.campaign_id)
        for window in CapWindow:
            if window is CapWindow.CONCURRENT:  # lines in use, not sales in a window
                continue
            if (campaign, window.value) in limits:
                held[(campaign, window.value, window_key(window, zones[campaign], row.created_at))] += 1
    for (campaign, window, key), n in held.items():
        if n > limits[(campaign, window)]:
            over.append(f"sales {campaign} {key}: {n} > {limits[(campaign, window)]}")
    at_limit = sum(1 for (c, w, _), n in held.items() if n == limits[(c, w)])
    return Check(name="no cap exceeded", ok=not over,
                 detail="; ".join(over[:3]) or f"{checked} counters and {len(held)} sale windows "
                                                 f"within their caps ({at_limit} at the limit)")  # fmt: skip


async def _ledger(conn: sa.ext.asyncio.AsyncConnection) -> list[Check]:
    from exchange import ledger

    trial = await ledger.trial_balance(conn)
    differences = ", ".join(f"{t.currency} {t.difference_minor}" for t in trial.totals) or "no entries"
    report = await ledger.reconcile(conn)
    codes = Counter(a.code for a in report.anomalies)
    return [
        Check(name="trial balance zero", ok=trial.balanced, detail=f"difference: {differences}"),
        Check(name="ledger reconciles", ok=report.ok,
              detail=f"{report.sales_checked} sales checked; " + (", ".join(f"{c} {n}" for c, n in codes.items()) or "no anomaly")),
    ]  # fmt: skip


async def _sales(conn: sa.ext.asyncio.AsyncConnection) -> Check:
    statuses = await _counts(conn, sales.c.status)
    pending = (await _counts(conn, deliveries.c.status)).get("pending", 0)
    delivered_leads = sa.select(sales.c.lead_id).where(sales.c.status == "delivered")
    sold_without = (
        await conn.execute(
            sa.select(sa.func.count()).select_from(leads)
            .where(leads.c.status == "sold", leads.c.id.not_in(delivered_leads))
        )
    ).scalar_one()  # fmt: skip
    ok = statuses.get("delivering", 0) == 0 and pending == 0 and sold_without == 0
    detail = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items())) or "no sales"
    return Check(name="every sale delivered", ok=ok,
                 detail=f"sales: {detail}; deliveries pending {pending}; sold leads without a delivered sale {sold_without}")  # fmt: skip
