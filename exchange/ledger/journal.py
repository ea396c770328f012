"""Posting entries, inside the caller's transaction.

``post_entry`` is the only writer of postings and balances. It:

1. returns the stored entry when the id was posted before with the same contents (a replay),
   and refuses the id with other contents (``EntryConflict``): TigerBeetle's ``exists`` and
   ``exists_with_different_*``, Formance's idempotency hash;
2. takes a share lock on the period row and refuses a closed period, so a close waits for
   posts in flight and no post lands after it;
3. opens missing accounts, inserts the postings, and moves every party account's balance with
   one guarded, all-or-nothing UPDATE that locks the rows in sorted account order, so two
   entries never lock in opposite orders.

The common case (accounts open, period open, a new id) takes three statements: one
``INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING RETURNING`` claims the id only while the
period row is open (share-locked) and every account exists in the entry's currency; one UPDATE
moves the balances; one INSERT writes the postings. Anything else (a replay, a closed or new
period, an account to open, a reversal) takes the careful path inside a savepoint.

A refusal leaves the caller's transaction as it was and usable: the auction can catch
``InsufficientFunds`` and try the next bid in the same transaction. (The fast path's only
refusal, insufficient funds, moves nothing and deletes the id it claimed a moment before.)
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.errors import FieldProblem, not_found
from exchange.ledger.builders import reversal_entry
from exchange.ledger.closing import lock_open_period
from exchange.ledger.entries import Entry, EntryKind, Posting, check_entry, entry_hash
from exchange.ledger.errors import EntryConflict, InsufficientFunds, InvalidEntry
from exchange.ledger.funds import move_balances, open_accounts
from exchange.ledger.periods import period_of
from exchange.ledger.records import LedgerEntry, Posted
from exchange.store.db import dialect_insert
from exchange.store.tables import journal_entries, ledger_accounts, ledger_periods, postings


async def post_entry(
    conn: AsyncConnection,
    entry: Entry,
    *,
    now: dt.datetime,
    by: uuid.UUID | None = None,
    allow_overdraft_for: Collection[str] = (),
    credit_limits_minor: Mapping[uuid.UUID, int] | None = None,
) -> Posted:
    """Post ``entry`` once. ``by``: the party recording it (None: the exchange itself).
    ``allow_overdraft_for``: account codes exempt from their bound for this entry.
    ``credit_limits_minor``: buyer credit limits the caller already holds; otherwise they are
    read from ``buyer_accounts.credit_limit_minor`` (0 without a row)."""
    problems = check_entry(entry)
    if problems:
        raise InvalidEntry(problems)
    digest = entry_hash(entry)
    period = entry.period or period_of(now)
    limits = credit_limits_minor or {}
    if entry.reverses_id is None and period <= period_of(now):
        if await _claim_open(conn, entry, period, digest, now, by):
            try:
                await move_balances(conn, entry, allow_overdraft_for, limits)
            except InsufficientFunds:
                # nothing moved; give the id back, as a savepoint rollback would
                await conn.execute(journal_entries.delete().where(journal_entries.c.id == entry.id))
                raise
            await _insert_postings(conn, entry)
            return Posted(entry=_stored(entry, period, now, by), replayed=False)
    if await _hash_of(conn, entry.id) is not None:
        return await _replay(conn, entry.id, digest)
    if period > period_of(now):
        raise InvalidEntry([FieldProblem("period", f"{period} has not begun")])
    async with conn.begin_nested():
        await lock_open_period(conn, period)
        claimed = await _claim(conn, entry, period, digest, now, by)
        if claimed:
            await open_accounts(conn, entry, now)
            await _insert_postings(conn, entry)
            await move_balances(conn, entry, allow_overdraft_for, limits)
    if not claimed:  # a concurrent post of the same id committed between our read and insert
        return await _replay(conn, entry.id, digest)
    return Posted(entry=_stored(entry, period, now, by), replayed=False)


async def _insert_postings(conn: AsyncConnection, entry: Entry) -> None:
    # One multi-row INSERT, built once per number of lines (an executemany would be one
    # execution per line on the server).
    params: dict[str, Any] = {}
    for line, p in enumerate(entry.postings):
        params.update({f"e{line}": entry.id, f"l{line}": line, f"a{line}": p.account, f"m{line}": p.amount_minor,
                       f"c{line}": p.currency})  # fmt: skip
    await conn.execute(_postings_insert(len(entry.postings)), params)


_POSTING_PARAMS = (("e", "entry_id"), ("l", "line"), ("a", "account_code"), ("m", "amount_minor"), ("c", "currency"))


@functools.cache
def _postings_insert(lines: int) -> Any:
    return postings.insert().values(
        [
            {column: sa.bindparam(f"{prefix}{i}", type_=postings.c[column].type) for prefix, column in _POSTING_PARAMS}
            for i in range(lines)
        ]
    )  # fmt: skip


def _entry_row(
    entry: Entry, period: str, digest: str, now: dt.datetime, by: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind.value,
        "lead_id": entry.lead_id,
        "sale_id": entry.sale_id,
        "reverses_id": entry.reverses_id,
        "memo": entry.memo,
        "period": period,
        "request_hash": digest,
        "created_at": now,
        "created_by": by,
    }


async def _claim_open(
    conn: AsyncConnection,
    entry: Entry,
    period: str,
    digest: str,
    now: dt.datetime,
    by: uuid.UUID | None,
) -> bool:
    """Claim the id in one statement, only while the period row exists and is open (share
    locked, as ``lock_open_period`` does) and every account exists in the entry's currency.
    False: the id is taken, or something needs the careful path; nothing was written."""
    currency_of = {p.account: p.currency for p in entry.postings}
    accounts_ready = (
        sa.select(sa.func.count())
        .select_from(ledger_accounts)
        .where(
            sa.or_(
                *(
                    sa.and_(ledger_accounts.c.code == code, ledger_accounts.c.currency == ccy)
                    for code, ccy in sorted(currency_of.items())
                )
            )
        )
        .scalar_subquery()
    )
    row = _entry_row(entry, period, digest, now, by)
    source = (
        sa.select(
            *(
                sa.literal(value, journal_entries.c[name].type).label(name)
                for name, value in row.items()
            )
        )
        .select_from(ledger_periods)
        .where(
            ledger_periods.c.period == period,
            ledger_periods.c.closed_at.is_(None),
            accounts_ready == len(currency_of),
        )
        # FOR SHARE: posts do not wait for each other, but a close waits for them.
        .with_for_update(read=True, of=ledger_periods)
    )
    stmt = (
        dialect_insert(conn, journal_entries)
        .from_select(list(row), source)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(journal_entries.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def reverse_entry(
    conn: AsyncConnection,
    entry_id: uuid.UUID,
    *,
    now: dt.datetime,
    by: uuid.UUID | None = None,
    memo: str = "",
) -> Posted:
    """Undo an entry with its exact opposite (e.g. a sale whose delivery finally failed)."""
    original = await get_entry(conn, entry_id)
    if original is None:
        raise not_found("entry")
    if original.kind is EntryKind.REVERSAL:
        raise InvalidEntry(
            [FieldProblem("entry_id", "a reversal is not reversed; post a new entry")]
        )
    return await post_entry(conn, reversal_entry(original.as_entry(), memo=memo), now=now, by=by)


async def get_entry(conn: AsyncConnection, entry_id: uuid.UUID) -> LedgerEntry | None:
    found = await entries_where(conn, journal_entries.c.id == entry_id)
    return found[0] if found else None


async def entries_where(conn: AsyncConnection, *where: Any) -> list[LedgerEntry]:
    """Entries matching ``where``, oldest first, each with its postings in line order."""
    rows = (
        await conn.execute(
            sa.select(journal_entries)
            .where(*where)
            .order_by(journal_entries.c.created_at, journal_entries.c.id)
        )
    ).all()
    if not rows:
        return []
    legs: dict[uuid.UUID, list[Posting]] = defaultdict(list)
    query = (
        sa.select(postings)
        .where(postings.c.entry_id.in_([r.id for r in rows]))
        .order_by(postings.c.entry_id, postings.c.line)
    )
    for leg in await conn.execute(query):
        legs[leg.entry_id].append(Posting(leg.account_code, int(leg.amount_minor), leg.currency))
    return [
        LedgerEntry(
            id=r.id,
            kind=EntryKind(r.kind),
            period=r.period,
            lead_id=r.lead_id,
            sale_id=r.sale_id,
            reverses_id=r.reverses_id,
            memo=r.memo,
            created_at=r.created_at,
            created_by=r.created_by,
            postings=legs[r.id],
        )
        for r in rows
    ]


def _stored(entry: Entry, period: str, now: dt.datetime, by: uuid.UUID | None) -> LedgerEntry:
    return LedgerEntry(
        id=entry.id,
        kind=entry.kind,
        period=period,
        lead_id=entry.lead_id,
        sale_id=entry.sale_id,
        reverses_id=entry.reverses_id,
        memo=entry.memo,
        created_at=now,
        created_by=by,
        postings=list(entry.postings),
    )


async def _hash_of(conn: AsyncConnection, entry_id: uuid.UUID) -> str | None:
    query = sa.select(journal_entries.c.request_hash).where(journal_entries.c.id == entry_id)
    return (await conn.execute(query)).scalar()


async def _replay(conn: AsyncConnection, entry_id: uuid.UUID, digest: str) -> Posted:
    if await _hash_of(conn, entry_id) != digest:
        raise EntryConflict(entry_id)
    stored = await get_entry(conn, entry_id)
    assert stored is not None  # read just above in the same transaction
    return Posted(entry=stored, replayed=True)


async def _claim(
    conn: AsyncConnection,
    entry: Entry,
    period: str,
    digest: str,
    now: dt.datetime,
    by: uuid.UUID | None,
) -> bool:
    if entry.reverses_id is not None:
        await _check_reversible(conn, entry.reverses_id)
    stmt = dialect_insert(conn, journal_entries).values(
        **_entry_row(entry, period, digest, now, by)
    )
    # Conflict on the id only: the winner of a race on one id is the entry; we replay it.
    # RETURNING, not rowcount: the async PostgreSQL driver reports -1 for an INSERT.
    result = await conn.execute(
        stmt.on_conflict_do_nothing(index_elements=["id"]).returning(journal_entries.c.id)
    )
    return result.first() is not None


async def _check_reversible(conn: AsyncConnection, original_id: uuid.UUID) -> None:
    row = (
        await conn.execute(
            sa.select(journal_entries.c.id, journal_entries.c.kind).where(
                journal_entries.c.id == original_id
            )
        )
    ).first()
    if row is None or row.kind == EntryKind.REVERSAL.value:
        raise InvalidEntry(
            [FieldProblem("reverses_id", "no entry with this id that a reversal may undo")]
        )
    other = (
        await conn.execute(
            sa.select(journal_entries.c.id).where(journal_entries.c.reverses_id == original_id)
        )
    ).scalar()
    if other is not None:
        raise InvalidEntry([FieldProblem("reverses_id", f"already reversed by entry {other}")])
