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
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ledger import accounts
from exchange.ledger.accounts import normal_balance
from exchange.store.db import dialect_insert
from exchange.store.tables import account_balances, buyer_accounts, sales
from exchange.store.types import UTCDateTime

IN_FLIGHT = "delivering"


class BuyerState(msgspec.Struct, frozen=True):
    spendable_minor: int  # balance + credit - in flight
    last_won_at: dt.datetime | None  # ties between equal bids go to the least recent winner


async def buyer_states(conn: AsyncConnection, buyer_ids: Iterable[str]) -> dict[str, BuyerState]:
    """Per buyer: what it can spend now and when it last won (one statement: terms, ledger
    balances and money in flight, each an indexed query, joined by UNION ALL)."""
    prefix = accounts.buyer_prefix()
    if conn.dialect.name == "postgresql":
        ids = sorted(set(buyer_ids))  # as the market holds them: canonical text
        if not ids:
            return {}
        params = {"ids": ",".join(ids), "codes": ",".join([prefix + b for b in ids]), "in_flight": IN_FLIGHT}
        return _fold(await conn.execute(_STATES_PG, params), ids, prefix, str)
    uuids = sorted({uuid.UUID(b) for b in buyer_ids})
    if not uuids:
        return {}
    terms_q = sa.select(
        sa.literal("t").label("kind"), sa.cast(buyer_accounts.c.buyer_id, sa.String).label("ref"),
        buyer_accounts.c.credit_limit_minor.label("amount"), buyer_accounts.c.last_won_at.label("at"),
    ).where(buyer_accounts.c.buyer_id.in_(uuids))  # fmt: skip
    money_q = sa.select(
        sa.literal("m"), account_balances.c.account_code, account_balances.c.balance_minor, sa.null()
    ).where(account_balances.c.account_code.in_([accounts.buyer(b) for b in uuids]))
    flying_q = (
        sa.select(sa.literal("f"), sa.cast(sales.c.buyer_id, sa.String), sa.func.sum(sales.c.price_minor), sa.null())
        .where(sales.c.buyer_id.in_(uuids), sales.c.status == IN_FLIGHT)
        .group_by(sales.c.buyer_id)
    )  # fmt: skip
    rows = await conn.execute(sa.union_all(terms_q, money_q, flying_q))
    # SQLite casts a uuid to its 32 hex digits: back to the canonical text
    return _fold(rows, [str(b) for b in uuids], prefix, lambda ref: str(uuid.UUID(ref)))


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


def _fold(rows: Iterable[Any], ids: list[str], prefix: str, buyer_of: Callable[[str], str]) -> dict[str, BuyerState]:
    """The (kind, ref, amount, at) rows of either statement, per buyer: ``t`` terms (credit,
    last win), ``m`` the ledger balance (ref: the account code), ``f`` money in flight."""
    credit: dict[str, int] = {}
    won: dict[str, dt.datetime | None] = {}
    money: dict[str, int] = {}
    flying: dict[str, int] = {}
    for kind, ref, amount, at in rows:
        if kind == "t":
            credit[buyer_of(ref)] = int(amount)
            won[buyer_of(ref)] = at
        elif kind == "m":
            money[ref[len(prefix) :]] = normal_balance(accounts.AccountKind.BUYER, int(amount))
        else:
            flying[buyer_of(ref)] = int(amount)
    return {b: BuyerState(money.get(b, 0) + credit.get(b, 0) - flying.get(b, 0), won.get(b)) for b in ids}


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
        await conn.execute(
            dialect_insert(conn, buyer_accounts)
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
