"""Can this buyer pay? The one place that answers.

A buyer's money is its ledger account (prepaid balance; deposits in, sales out) plus the
credit limit on its ``buyer_accounts`` row, less what is *in flight*: sales made but not yet
delivered, which are charged only when the buyer accepts the lead. So a buyer is never sold
more than it can pay for, and never charged for a lead it did not take.

Selling to a buyer locks its ``buyer_accounts`` row (one row per buyer) while the check and the
new in-flight sale are written, so two sales at once cannot both spend the last of its money.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ledger import accounts
from exchange.ledger.accounts import normal_balance
from exchange.store.tables import account_balances, buyer_accounts, sales
from exchange.store.types import UTCDateTime

IN_FLIGHT = "delivering"


class BuyerState(msgspec.Struct, frozen=True):
    spendable_minor: int  # balance + credit - in flight
    last_won_at: dt.datetime | None  # ties between equal bids go to the least recent winner


async def buyer_states(conn: AsyncConnection, buyer_ids: Iterable[str]) -> dict[str, BuyerState]:
    """Per buyer: what it can spend now and when it last won (one statement: terms, ledger
    balances and money in flight, each an indexed query, joined by UNION ALL)."""
    if conn.dialect.name == "postgresql":
        return await _buyer_states_pg(conn, sorted(set(buyer_ids)))
    ids = sorted({uuid.UUID(b) for b in buyer_ids})
    result = {str(b): BuyerState(0, None) for b in ids}
    if not ids:
        return result
    codes = {accounts.buyer(b): b for b in ids}
    terms_q = sa.select(
        sa.literal("t").label("kind"), sa.cast(buyer_accounts.c.buyer_id, sa.String).label("ref"),
        buyer_accounts.c.credit_limit_minor.label("amount"), buyer_accounts.c.last_won_at.label("at"),
    ).where(buyer_accounts.c.buyer_id.in_(ids))  # fmt: skip
    money_q = sa.select(
        sa.literal("m"),
        account_balances.c.account_code,
        account_balances.c.balance_minor,
        sa.null(),
    ).where(account_balances.c.account_code.in_(list(codes)))
    flying_q = (
        sa.select(
            sa.literal("f"),
            sa.cast(sales.c.buyer_id, sa.String),
            sa.func.sum(sales.c.price_minor),
            sa.null(),
        )
        .where(sales.c.buyer_id.in_(ids), sales.c.status == IN_FLIGHT)
        .group_by(sales.c.buyer_id)
    )
    credit: dict[uuid.UUID, int] = {}
    won: dict[uuid.UUID, dt.datetime | None] = {}
    money: dict[uuid.UUID, int] = {}
    flying: dict[uuid.UUID, int] = {}
    for kind, ref, amount, at in await conn.execute(sa.union_all(terms_q, money_q, flying_q)):
        if kind == "t":
            credit[uuid.UUID(ref)] = int(amount)
            won[uuid.UUID(ref)] = at
        elif kind == "m":
            money[codes[ref]] = normal_balance(accounts.AccountKind.BUYER, int(amount))
        else:
            flying[uuid.UUID(ref)] = int(amount)
    for b in ids:
        spendable = money.get(b, 0) + credit.get(b, 0) - flying.get(b, 0)
        result[str(b)] = BuyerState(spendable, won.get(b))
    return result


# The same three parts with list parameters: one statement text however many buyers, which
# psycopg and PostgreSQL prepare once (an IN list made a new text, parsed and planned, per lead).
# Each list travels as one comma-joined text (the driver dumps a Python list item by item).
_STATES_PG = sa.text(
    "SELECT 't', buyer_id::text, credit_limit_minor, last_won_at FROM buyer_accounts"
    " WHERE buyer_id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))"
    " UNION ALL SELECT 'm', account_code, balance_minor, NULL FROM account_balances"
    " WHERE account_code = ANY(string_to_array(:codes, ','))"
    " UNION ALL SELECT 'f', buyer_id::text, sum(price_minor), NULL FROM sales"
    " WHERE buyer_id = ANY(CAST(string_to_array(:ids, ',') AS uuid[])) AND status = :in_flight GROUP BY buyer_id"
).columns(sa.column("kind", sa.String), sa.column("ref", sa.String), sa.column("amount", sa.BigInteger),
          sa.column("at", UTCDateTime))  # fmt: skip


async def _buyer_states_pg(conn: AsyncConnection, ids: list[str]) -> dict[str, BuyerState]:
    if not ids:
        return {}
    prefix = accounts.buyer_prefix()
    credit: dict[str, int] = {}
    won: dict[str, dt.datetime | None] = {}
    money: dict[str, int] = {}
    flying: dict[str, int] = {}
    params = {"ids": ",".join(ids), "codes": ",".join([prefix + b for b in ids]), "in_flight": IN_FLIGHT}
    for kind, ref, amount, at in await conn.execute(_STATES_PG, params):
        if kind == "t":
            credit[ref] = int(amount)
            won[ref] = at
        elif kind == "m":
            money[ref[len(prefix) :]] = normal_balance(accounts.AccountKind.BUYER, int(amount))
        else:
            flying[ref] = int(amount)
    return {
        b: BuyerState(money.get(b, 0) + credit.get(b, 0) - flying.get(b, 0), won.get(b))
        for b in ids
    }


async def lock_and_check(conn: AsyncConnection, buyer_id: str, amount_minor: int) -> bool:
    """Lock the buyer's row and tell whether it can pay ``amount_minor`` more. Call in the
    transaction that then records the in-flight sale, so the lock covers both."""
    bid = uuid.UUID(buyer_id)
    lock = (
        sa.select(buyer_accounts.c.buyer_id)
        .where(buyer_accounts.c.buyer_id == bid)
        .with_for_update()
    )
    if (await conn.execute(lock)).first() is None:
        # A buyer with deposits but no terms row still needs a row to lock: create it (no credit).
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(
            dialect.insert(buyer_accounts)
            .values(buyer_id=bid, balance_minor=0, credit_limit_minor=0, margin=None, penalty_bps=0,
                    last_won_at=None, updated_at=dt.datetime.now(dt.timezone.utc))
            .on_conflict_do_nothing()
        )  # fmt: skip
        await conn.execute(lock)
    state = (await buyer_states(conn, [buyer_id]))[buyer_id]
    return state.spendable_minor >= amount_minor


async def mark_won(conn: AsyncConnection, buyer_id: str, now: dt.datetime) -> None:
    await conn.execute(_MARK_WON, {"_id": uuid.UUID(buyer_id), "last_won_at": now})


_MARK_WON = buyer_accounts.update().where(buyer_accounts.c.buyer_id == sa.bindparam("_id"))
