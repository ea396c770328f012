"""The delivery outbox: one row per sale, written in the sale's transaction.

A sale is only a promise until its buyer accepts the lead. The ``deliveries`` row that commits
with the sale is the exchange's memory of that promise: whatever dies (the API process, the
worker, the broker's messages), a sweeper finds the rows still pending and sends them again.

Attempts are leased: ``claim`` takes a row only if no other attempt holds it, so two copies of
one message (Dramatiq delivers at least once, the sweeper may resend) never post the lead to
the buyer at the same moment, and ``finish`` moves a row out of ``pending`` exactly once.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import uuid

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.store.tables import deliveries, delivery_attempts

PENDING = "pending"
DELIVERED = "delivered"
REJECTED = "rejected"
FAILED = "failed"  # retries exhausted: the walk moves on
EXCERPT_MAX_CHARS = 500
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: uuid.UUID
    attempt: int  # 1 for the first
    created_at: dt.datetime


def backoff_ms(attempt: int, *, min_ms: int, max_ms: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with jitter: min * 2^(attempt-1) * U(1, 2), capped at max."""
    base = min_ms * (2 ** max(attempt - 1, 0))
    jitter = (rng or random).uniform(1.0, 2.0)
    return int(min(base * jitter, max_ms))


def redact(text: str) -> str:
    """A buyer's answer as we keep it in attempt logs: short, with emails and phones masked."""
    text = _EMAIL.sub("[email]", text[: EXCERPT_MAX_CHARS * 2])
    return _PHONE.sub("[phone]", text)[:EXCERPT_MAX_CHARS]


async def create(
    conn: AsyncConnection,
    *,
    sale_id: uuid.UUID,
    lead_id: uuid.UUID,
    campaign_id: uuid.UUID,
    buyer_id: uuid.UUID,
    now: dt.datetime,
    leased_until: dt.datetime | None = None,
) -> Claim | None:
    """Write a sale's delivery, pending. With ``leased_until``, the row is written with its
    first attempt already taken (as ``claim`` would take it) by the caller, who makes that
    attempt at once: the claim costs no transaction of its own. The lease still protects it:
    should the caller die, the sweeper resends the delivery once the lease has run out."""
    await conn.execute(
        deliveries.insert(),  # constant statements with the values apart: compiled once
        dict(
            sale_id=sale_id, lead_id=lead_id, campaign_id=campaign_id, buyer_id=buyer_id,
            status=PENDING, attempts=0 if leased_until is None else 1, next_attempt_at=now,
            leased_until=leased_until, last_error=None, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return None if leased_until is None else Claim(sale_id=sale_id, attempt=1, created_at=now)


async def claim(
    conn: AsyncConnection, sale_id: uuid.UUID, now: dt.datetime, lease: dt.timedelta
) -> Claim | None:
    """Take the next attempt of a pending delivery, unless another attempt holds it."""
    result = await conn.execute(
        deliveries.update()
        .where(
            deliveries.c.sale_id == sale_id,
            deliveries.c.status == PENDING,
            sa.or_(deliveries.c.leased_until.is_(None), deliveries.c.leased_until < now),
        )
        .values(attempts=deliveries.c.attempts + 1, leased_until=now + lease, updated_at=now)
        .returning(deliveries.c.attempts, deliveries.c.created_at)
    )
    row = result.first()
    return Claim(sale_id=sale_id, attempt=row.attempts, created_at=row.created_at) if row else None


async def log_attempt(
    conn: AsyncConnection,
    claim_: Claim,
    *,
    started_at: dt.datetime,
    latency_ms: int,
    http_status: int | None,
    outcome: str,
    detail: str,
) -> None:
    await conn.execute(
        delivery_attempts.insert(),
        dict(
            sale_id=claim_.sale_id, attempt=claim_.attempt, started_at=started_at,
            latency_ms=latency_ms, http_status=http_status, outcome=outcome,
            detail=redact(detail or ""),
        )
    )  # fmt: skip


async def retry_later(
    conn: AsyncConnection, sale_id: uuid.UUID, *, at: dt.datetime, error: str, now: dt.datetime
) -> None:
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.sale_id == sale_id, deliveries.c.status == PENDING)
        .values(next_attempt_at=at, leased_until=None, last_error=redact(error), updated_at=now)
    )


async def finish(
    conn: AsyncConnection, sale_id: uuid.UUID, status: str, now: dt.datetime, error: str | None = None
) -> bool:
    """Move a pending delivery to its end state; False if something else already did."""
    values = {"status": status, "leased_until": None, "last_error": redact(error) if error else None, "updated_at": now}
    result = await conn.execute(_FINISH, {"_id": sale_id, **values})
    return result.rowcount == 1


# Built once, values bound at execution: compiled once instead of per delivery.
_FINISH = deliveries.update().where(deliveries.c.sale_id == sa.bindparam("_id"), deliveries.c.status == PENDING)


async def due(conn: AsyncConnection, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Pending deliveries whose next attempt is due and that no attempt holds."""
    rows = await conn.execute(
        sa.select(deliveries.c.sale_id)
        .where(
            deliveries.c.status == PENDING,
            deliveries.c.next_attempt_at <= now,
            sa.or_(deliveries.c.leased_until.is_(None), deliveries.c.leased_until < now),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    return [row.sale_id for row in rows]


async def postpone(conn: AsyncConnection, sale_ids: list[uuid.UUID], until: dt.datetime) -> None:
    """Push back the next sweep of deliveries just re-sent, so one sweep sends each once."""
    if sale_ids:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.sale_id.in_(sale_ids), deliveries.c.status == PENDING)
            .values(next_attempt_at=until)
        )
