"""Housekeeping: forget idempotency answers and duplicate keys once they can no longer matter,
and erase leads' PII past its retention (``EXCHANGE_PII_RETENTION_DAYS``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from exchange.settings import Settings
from exchange.store.db import Database
from exchange.store.tables import dedupe_keys, idempotency_keys, lead_pii, leads, verticals


async def purge_expired(db: Database, settings: Settings) -> dict[str, int]:
    now = dt.datetime.now(dt.timezone.utc)
    async with db.write() as conn:
        idem = await conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.created_at < now - dt.timedelta(hours=settings.idempotency_ttl_hours)
            )
        )
        removed_keys = 0
        for row in await conn.execute(sa.select(verticals.c.id, verticals.c.dedupe_window_days)):
            result = await conn.execute(
                dedupe_keys.delete().where(
                    dedupe_keys.c.vertical_id == row.id,
                    dedupe_keys.c.accepted_at <= now - dt.timedelta(days=row.dedupe_window_days),
                )
            )
            removed_keys += result.rowcount
        removed_pii = 0
        if settings.pii_retention_days > 0:
            cutoff = now - dt.timedelta(days=settings.pii_retention_days)
            old = sa.select(leads.c.id).where(leads.c.created_at < cutoff)
            result = await conn.execute(lead_pii.delete().where(lead_pii.c.lead_id.in_(old)))
            removed_pii = result.rowcount
    return {"idempotency_keys": idem.rowcount, "dedupe_keys": removed_keys, "lead_pii": removed_pii}
