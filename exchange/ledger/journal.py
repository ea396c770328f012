"""Posting entries, inside the caller's transaction.

``post_entry`` is the only writer of postings and balances. In one savepoint it:

1. returns the stored entry when the id was posted before with the same contents (a replay),
   and refuses the id with other contents (``EntryConflict``): TigerBeetle's ``exists`` and
   ``exists_with_different_*``, Formance's idempotency hash;
2. takes a share lock on the period row and refuses a closed period, so a close waits for
   posts in flight and no post lands after it;
3. opens missing accounts, inserts the postings, and moves each party account's balance with
   one guarded UPDATE, in sorted account order so two entries never lock in opposite orders.

A refusal rolls the savepoint back and leaves the caller's transaction usable: the auction can
catch ``InsufficientFunds`` and try the next bid in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind
from exchange.errors import ApiError, FieldProblem, not_found
from exchange.ledger import accounts
from exchange.ledger.accounts import AccountKind
from exchange.ledger.builders import reversal_entry
from exchange.ledger.entries import Entry, EntryKind, Posting, check_entry, entry_hash
from exchange.ledger.errors import EntryConflict, InsufficientFunds, InvalidEntry, PeriodClosed
from exchange.ledger.periods import is_period, period_end, period_of
from exchange.ledger.records import LedgerEntry, PeriodInfo, Posted
from exchange.store.tables import (
    account_balances,
    buyer_accounts,
    journal_entries,
    ledger_accounts,
    ledger_periods,
    parties,
    postings,
)

# Entries that spend: their debits to party accounts are bounded (a buyer down to minus its
# credit limit, a supplier down to zero owed). Corrections (returns, reversals, adjustments)
# and deposits always post: refusing to record what happened would make the books lie.
BOUNDED_KINDS = frozenset({EntryKind.SALE, EntryKind.PAYOUT})
PARTY_KINDS_FOR = {
    AccountKind.BUYER: frozenset({PartyKind.BUYER.value, PartyKind.TEAM.value}),
    AccountKind.SUPPLIER: frozenset({PartyKind.SUPPLIER.value}),
}


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


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
    if await _hash_of(conn, entry.id) is not None:
        return await _replay(conn, entry.id, digest)
    period = entry.period or period_of(now)
    if period > period_of(now):
        raise InvalidEntry([FieldProblem("period", f"{period} has not begun")])
    async with conn.begin_nested():
        await _lock_open_period(conn, period)
        claimed = await _claim(conn, entry, period, digest, now, by)
        if claimed:
            await _open_accounts(conn, entry, now)
            await conn.execute(
                postings.insert(),
                [
                    {"entry_id": entry.id, "line": line, "account_code": p.account,
                     "amount_minor": p.amount_minor, "currency": p.currency}
                    for line, p in enumerate(entry.postings)
                ],
            )  # fmt: skip
            await _move_balances(conn, entry, allow_overdraft_for, credit_limits_minor or {})
    if not claimed:  # a concurrent post of the same id committed between our read and insert
        return await _replay(conn, entry.id, digest)
    return Posted(entry=_stored(entry, period, now, by), replayed=False)


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
        raise InvalidEntry([FieldProblem("entry_id", "a reversal is not reversed; post a new entry")])
    return await post_entry(conn, reversal_entry(original.as_entry(), memo=memo), now=now, by=by)


async def get_entry(conn: AsyncConnection, entry_id: uuid.UUID) -> LedgerEntry | None:
    found = await entries_where(conn, journal_entries.c.id == entry_id)
    return found[0] if found else None


async def entries_where(conn: AsyncConnection, *where: Any) -> list[LedgerEntry]:
    """Entries matching ``where``, oldest first, each with its postings in line order."""
    rows = (
        await conn.execute(
            sa.select(journal_entries).where(*where).order_by(journal_entries.c.created_at, journal_entries.c.id)
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
            id=r.id, kind=EntryKind(r.kind), period=r.period, lead_id=r.lead_id, sale_id=r.sale_id,
            reverses_id=r.reverses_id, memo=r.memo, created_at=r.created_at, created_by=r.created_by,
            postings=legs[r.id],
        )
        for r in rows
    ]  # fmt: skip


async def close_period(
    conn: AsyncConnection, period: str, *, now: dt.datetime, by: uuid.UUID | None = None
) -> PeriodInfo:
    """Lock a finished month: no entry lands in it afterwards. Closing twice is harmless."""
    if not is_period(period):
        raise ApiError(422, "validation_failed", "not a period", fields=[FieldProblem("period", "YYYY-MM")])
    if period_end(period) > now:
        raise ApiError(409, "period_not_over", f"{period} is not over yet; close it after it ends")
    await conn.execute(_insert(conn, ledger_periods).values(period=period).on_conflict_do_nothing())
    # Row lock: waits for posts in flight in this period (they hold a share lock) to finish.
    await conn.execute(
        ledger_periods.update()
        .where(ledger_periods.c.period == period, ledger_periods.c.closed_at.is_(None))
        .values(closed_at=now, closed_by=by)
    )
    row = (await conn.execute(sa.select(ledger_periods).where(ledger_periods.c.period == period))).one()
    return _period(row)


async def list_periods(conn: AsyncConnection) -> list[PeriodInfo]:
    rows = await conn.execute(sa.select(ledger_periods).order_by(ledger_periods.c.period))
    return [_period(row) for row in rows]


def _period(row: sa.Row) -> PeriodInfo:
    return PeriodInfo(
        period=row.period, closed=row.closed_at is not None, closed_at=row.closed_at, closed_by=row.closed_by
    )


def _stored(entry: Entry, period: str, now: dt.datetime, by: uuid.UUID | None) -> LedgerEntry:
    return LedgerEntry(
        id=entry.id, kind=entry.kind, period=period, lead_id=entry.lead_id, sale_id=entry.sale_id,
        reverses_id=entry.reverses_id, memo=entry.memo, created_at=now, created_by=by,
        postings=list(entry.postings),
    )  # fmt: skip


async def _hash_of(conn: AsyncConnection, entry_id: uuid.UUID) -> str | None:
    query = sa.select(journal_entries.c.request_hash).where(journal_entries.c.id == entry_id)
    return (await conn.execute(query)).scalar()


async def _replay(conn: AsyncConnection, entry_id: uuid.UUID, digest: str) -> Posted:
    if await _hash_of(conn, entry_id) != digest:
        raise EntryConflict(entry_id)
    stored = await get_entry(conn, entry_id)
    assert stored is not None  # read just above in the same transaction
    return Posted(entry=stored, replayed=True)


async def _lock_open_period(conn: AsyncConnection, period: str) -> None:
    await conn.execute(_insert(conn, ledger_periods).values(period=period).on_conflict_do_nothing())
    # FOR SHARE on PostgreSQL: posts do not wait for each other, but a close waits for them.
    # SQLite writes one transaction at a time, so there is nothing to race.
    query = sa.select(ledger_periods.c.closed_at).where(ledger_periods.c.period == period)
    closed_at = (await conn.execute(query.with_for_update(read=True))).scalar_one()
    if closed_at is not None:
        raise PeriodClosed(period)


async def _claim(
    conn: AsyncConnection, entry: Entry, period: str, digest: str, now: dt.datetime, by: uuid.UUID | None
) -> bool:
    if entry.reverses_id is not None:
        await _check_reversible(conn, entry.reverses_id)
    stmt = _insert(conn, journal_entries).values(
        id=entry.id, kind=entry.kind.value, lead_id=entry.lead_id, sale_id=entry.sale_id,
        reverses_id=entry.reverses_id, memo=entry.memo, period=period, request_hash=digest,
        created_at=now, created_by=by,
    )  # fmt: skip
    # Conflict on the id only: the winner of a race on one id is the entry; we replay it.
    result = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))
    return result.rowcount == 1


async def _check_reversible(conn: AsyncConnection, original_id: uuid.UUID) -> None:
    row = (
        await conn.execute(
            sa.select(journal_entries.c.id, journal_entries.c.kind).where(journal_entries.c.id == original_id)
        )
    ).first()
    if row is None or row.kind == EntryKind.REVERSAL.value:
        raise InvalidEntry([FieldProblem("reverses_id", "no entry with this id that a reversal may undo")])
    other = (
        await conn.execute(sa.select(journal_entries.c.id).where(journal_entries.c.reverses_id == original_id))
    ).scalar()
    if other is not None:
        raise InvalidEntry([FieldProblem("reverses_id", f"already reversed by entry {other}")])


async def _open_accounts(conn: AsyncConnection, entry: Entry, now: dt.datetime) -> None:
    """Create accounts first posted to now, and check every account's currency and party."""
    first_line: dict[str, int] = {}
    currency_of: dict[str, str] = {}
    for line, p in enumerate(entry.postings):
        first_line.setdefault(p.account, line)
        currency_of[p.account] = p.currency
    codes = sorted(first_line)
    query = sa.select(ledger_accounts.c.code, ledger_accounts.c.currency).where(ledger_accounts.c.code.in_(codes))
    existing = {code: currency for code, currency in await conn.execute(query)}
    parsed = {code: accounts.parse(code) for code in codes}
    party_ids = [a.party_id for c, a in parsed.items() if a and a.party_id and c not in existing]
    known: dict[uuid.UUID, tuple[str, str]] = {}
    if party_ids:
        rows = await conn.execute(
            sa.select(parties.c.id, parties.c.kind, parties.c.currency).where(parties.c.id.in_(party_ids))
        )
        known = {r.id: (r.kind, r.currency) for r in rows}
    problems: list[FieldProblem] = []
    for code in codes:  # sorted: accounts are created in the same order by every writer
        account = parsed[code]
        assert account is not None  # check_entry refused unknown codes
        where = f"postings[{first_line[code]}]"
        if code in existing:
            if existing[code] != currency_of[code]:
                problems.append(FieldProblem(f"{where}.currency", f"{code} holds {existing[code]}"))
            continue
        if account.party_id is not None:
            party = known.get(account.party_id)
            if party is None or party[0] not in PARTY_KINDS_FOR[account.kind]:
                problems.append(FieldProblem(f"{where}.account", f"no {account.kind.value} party with this id"))
                continue
            if party[1] != currency_of[code]:
                problems.append(FieldProblem(f"{where}.currency", f"the party's currency is {party[1]}"))
                continue
        await conn.execute(
            _insert(conn, ledger_accounts)
            .values(code=code, kind=account.kind.value, party_id=account.party_id,
                    currency=currency_of[code], created_at=now)
            .on_conflict_do_nothing()
        )  # fmt: skip
        if account.kind in accounts.CACHED_KINDS:
            await conn.execute(
                _insert(conn, account_balances).values(account_code=code, balance_minor=0).on_conflict_do_nothing()
            )
    if problems:
        raise InvalidEntry(problems)


async def _credit_limit(conn: AsyncConnection, buyer_id: uuid.UUID, given: Mapping[uuid.UUID, int]) -> int:
    if buyer_id in given:
        return given[buyer_id]
    query = sa.select(buyer_accounts.c.credit_limit_minor).where(buyer_accounts.c.buyer_id == buyer_id)
    return int((await conn.execute(query)).scalar() or 0)


async def _move_balances(
    conn: AsyncConnection, entry: Entry, exempt: Collection[str], limits: Mapping[uuid.UUID, int]
) -> None:
    deltas: dict[str, int] = defaultdict(int)
    for p in entry.postings:
        account = accounts.parse(p.account)
        if account is not None and account.kind in accounts.CACHED_KINDS:
            deltas[p.account] += p.amount_minor
    # notes: keep the sorted order; it is the lock order that keeps concurrent posts deadlock-free.
    for code in sorted(deltas):
        delta = deltas[code]
        if delta == 0:
            continue
        balance = account_balances.c.balance_minor
        stmt = (
            account_balances.update()
            .where(account_balances.c.account_code == code)
            .values(balance_minor=balance + delta)
        )
        bound: int | None = None
        if entry.kind in BOUNDED_KINDS and delta > 0 and code not in exempt:
            account = accounts.parse(code)
            assert account is not None and account.party_id is not None
            # The stored balance is debits - credits: a buyer may owe up to its credit limit,
            # a supplier may be paid down to nothing owed.
            bound = await _credit_limit(conn, account.party_id, limits) if account.kind is AccountKind.BUYER else 0
            stmt = stmt.where(balance + delta <= bound)
        result = await conn.execute(stmt)
        if result.rowcount != 1:
            if bound is None:  # the row was created above in this savepoint; it cannot be missing
                raise RuntimeError(f"no balance row for {code}")
            query = sa.select(balance).where(account_balances.c.account_code == code)
            current = int((await conn.execute(query)).scalar_one())
            raise InsufficientFunds(code, delta, bound - current)
