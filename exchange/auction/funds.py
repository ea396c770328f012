"""Can this buyer pay? The one place that answers, so the ledger can take it over.

Until the ledger lands, a buyer's money is ``buyer_accounts.balance_minor`` (prepaid) plus
``credit_limit_minor``; a buyer with no row has nothing. A charge is one guarded UPDATE, so
concurrent sales can never take a buyer below its credit limit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.store.tables import buyer_accounts


class BuyerState(msgspec.Struct, frozen=True):
    spendable_minor: int  # balance + credit
    last_won_at: dt.datetime | None  # ties between equal bids go to the least recent winner


async def buyer_states(conn: AsyncConnection, buyer_ids: Iterable[str]) -> dict[str, BuyerState]:
    """Per buyer: what it can spend now and when it last won; nothing for a buyer without an
    account."""
    ids = sorted({uuid.UUID(b) for b in buyer_ids})
    result = {str(b): BuyerState(0, None) for b in ids}
    if not ids:
        return result
    rows = await conn.execute(
        sa.select(
            buyer_accounts.c.buyer_id,
            buyer_accounts.c.balance_minor + buyer_accounts.c.credit_limit_minor,
            buyer_accounts.c.last_won_at,
        ).where(buyer_accounts.c.buyer_id.in_(ids))
    )
    for buyer_id, spendable, last_won_at in rows:
        result[str(buyer_id)] = BuyerState(int(spendable), last_won_at)
    return result


async def mark_won(conn: AsyncConnection, buyer_id: str, now: dt.datetime) -> None:
    await conn.execute(
        buyer_accounts.update()
        .where(buyer_accounts.c.buyer_id == uuid.UUID(buyer_id))
        .values(last_won_at=now)
    )


async def charge(conn: AsyncConnection, buyer_id: str, amount_minor: int, now: dt.datetime) -> bool:
    """Take ``amount_minor`` from the buyer if balance + credit covers it."""
    result = await conn.execute(
        buyer_accounts.update()
        .where(
            buyer_accounts.c.buyer_id == uuid.UUID(buyer_id),
            buyer_accounts.c.balance_minor + buyer_accounts.c.credit_limit_minor >= amount_minor,
        )
        .values(
            balance_minor=buyer_accounts.c.balance_minor - amount_minor,
            updated_at=now,
        )
    )
    return result.rowcount == 1


async def refund(conn: AsyncConnection, buyer_id: str, amount_minor: int, now: dt.datetime) -> None:
    await conn.execute(
        buyer_accounts.update()
        .where(buyer_accounts.c.buyer_id == uuid.UUID(buyer_id))
        .values(balance_minor=buyer_accounts.c.balance_minor + amount_minor, updated_at=now)
    )
