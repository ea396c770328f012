"""Accounts and their running balances: opening accounts on first use, and the guarded UPDATE
that is at once the funds check and the lock.

The stored balance is debits minus credits. A spending entry (``BOUNDED_KINDS``) may move a
party account up to its bound only: a buyer to its credit limit (it owes at most that much), a
supplier to zero (it is paid at most what it is owed). Rows are updated in sorted account
order, so two entries never lock the same rows in opposite orders (Formance's "keep order").
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind
from exchange.errors import FieldProblem
from exchange.ledger import accounts
from exchange.ledger.accounts import AccountKind
from exchange.ledger.entries import Entry, EntryKind
from exchange.ledger.errors import InsufficientFunds, InvalidEntry
from exchange.store.db import dialect_insert
from exchange.store.tables import account_balances, buyer_accounts, ledger_accounts, parties

# Entries that spend: their debits to party accounts are bounded (a buyer down to minus its
# credit limit, a supplier down to zero owed). Corrections (returns, reversals, adjustments)
# and deposits always post: refusing to record what happened would make the books lie.
BOUNDED_KINDS = frozenset({EntryKind.SALE, EntryKind.PAYOUT})
PARTY_KINDS_FOR = {
    AccountKind.BUYER: frozenset({PartyKind.BUYER.value, PartyKind.TEAM.value}),
    AccountKind.SUPPLIER: frozenset({PartyKind.SUPPLIER.value}),
}


async def open_accounts(conn: AsyncConnection, entry: Entry, now: dt.datetime) -> None:
    """Create accounts first posted to now, and check every account's currency and party."""
    first_line: dict[str, int] = {}
    currency_of: dict[str, str] = {}
    for line, p in enumerate(entry.postings):
        first_line.setdefault(p.account, line)
        currency_of[p.account] = p.currency
    codes = sorted(first_line)
    query = sa.select(ledger_accounts.c.code, ledger_accounts.c.currency).where(
        ledger_accounts.c.code.in_(codes)
    )
    existing = {code: currency for code, currency in await conn.execute(query)}
    parsed = {code: accounts.parse(code) for code in codes}
    party_ids = [a.party_id for c, a in parsed.items() if a and a.party_id and c not in existing]
    known: dict[uuid.UUID, tuple[str, str]] = {}
    if party_ids:
        rows = await conn.execute(
            sa.select(parties.c.id, parties.c.kind, parties.c.currency).where(
                parties.c.id.in_(party_ids)
            )
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
                problems.append(
                    FieldProblem(f"{where}.account", f"no {account.kind.value} party with this id")
                )
                continue
            if party[1] != currency_of[code]:
                problems.append(
                    FieldProblem(f"{where}.currency", f"the party's currency is {party[1]}")
                )
                continue
        await conn.execute(
            dialect_insert(conn, ledger_accounts)
            .values(
                code=code,
                kind=account.kind.value,
                party_id=account.party_id,
                currency=currency_of[code],
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        if account.kind in accounts.CACHED_KINDS:
            await conn.execute(
                dialect_insert(conn, account_balances)
                .values(account_code=code, balance_minor=0)
                .on_conflict_do_nothing()
            )
    if problems:
        raise InvalidEntry(problems)


async def _credit_limit(
    conn: AsyncConnection, buyer_id: uuid.UUID, given: Mapping[uuid.UUID, int]
) -> int:
    if buyer_id in given:
        return given[buyer_id]
    query = sa.select(buyer_accounts.c.credit_limit_minor).where(
        buyer_accounts.c.buyer_id == buyer_id
    )
    return int((await conn.execute(query)).scalar() or 0)


async def move_balances(
    conn: AsyncConnection, entry: Entry, exempt: Collection[str], limits: Mapping[uuid.UUID, int]
) -> None:
    """Move every party account's balance in one guarded statement, all or nothing.

    The statement first locks the rows in sorted account order (``FOR UPDATE`` on PostgreSQL,
    the lock order that keeps concurrent posts deadlock-free), then checks every bounded
    account against its bound on the locked, current balances, and moves them all only when
    every bound holds. Nothing moves on a refusal, so the caller has nothing to undo here.
    """
    deltas: dict[str, int] = defaultdict(int)
    for p in entry.postings:
        account = accounts.parse(p.account)
        if account is not None and account.kind in accounts.CACHED_KINDS:
            deltas[p.account] += p.amount_minor
    moves: list[tuple[str, int, int | None]] = []
    for code in sorted(deltas):  # sorted: the lock order
        delta = deltas[code]
        if delta == 0:
            continue
        bound: int | None = None
        if entry.kind in BOUNDED_KINDS and delta > 0 and code not in exempt:
            account = accounts.parse(code)
            assert account is not None and account.party_id is not None
            # The stored balance is debits - credits: a buyer may owe up to its credit limit,
            # a supplier may be paid down to nothing owed.
            bound = (
                await _credit_limit(conn, account.party_id, limits)
                if account.kind is AccountKind.BUYER
                else 0
            )
        moves.append((code, delta, bound))
    if not moves:
        return
    moved = {row[0] for row in await conn.execute(_move_statement(conn, moves))}
    if len(moved) == len(moves):
        return
    current = {
        code: int(balance)
        for code, balance in await conn.execute(
            sa.select(account_balances.c.account_code, account_balances.c.balance_minor).where(
                account_balances.c.account_code.in_([code for code, _, _ in moves])
            )
        )
    }
    for code, delta, bound in moves:
        if code not in current:  # opened above in this savepoint, or known to exist
            raise RuntimeError(f"no balance row for {code}")
        if bound is not None and current[code] + delta > bound:
            raise InsufficientFunds(code, delta, bound - current[code])
    raise RuntimeError(f"balances of entry {entry.id} did not move")  # pragma: no cover


def _move_statement(
    conn: AsyncConnection, moves: list[tuple[str, int, int | None]]
) -> sa.TextClause:
    postgres = conn.dialect.name == "postgresql"
    params: dict[str, object] = {"n": len(moves)}
    rows, codes = [], []
    for i, (code, delta, bound) in enumerate(moves):
        params.update({f"c{i}": code, f"d{i}": delta, f"b{i}": bound})
        rows.append(f"(CAST(:c{i} AS VARCHAR), CAST(:d{i} AS BIGINT), CAST(:b{i} AS BIGINT))")
        codes.append(f":c{i}")
    # SQLite writes one transaction at a time: no row locks, no lock order to keep.
    materialized, collate, lock = (
        ("MATERIALIZED ", ' COLLATE "C"', " FOR UPDATE OF account_balances")
        if postgres
        else ("", "", "")
    )
    sql = (
        f"WITH v (code, delta, bound) AS (VALUES {', '.join(rows)}), "
        f"locked AS {materialized}("
        "SELECT account_balances.account_code, account_balances.balance_minor "
        f"FROM account_balances WHERE account_balances.account_code IN ({', '.join(codes)}) "
        f"ORDER BY account_balances.account_code{collate}{lock}) "
        "UPDATE account_balances SET balance_minor = account_balances.balance_minor + v.delta "
        "FROM v WHERE account_balances.account_code = v.code "
        "AND (SELECT count(*) FROM locked) = :n "
        "AND NOT EXISTS (SELECT 1 FROM locked JOIN v AS w ON w.code = locked.account_code "
        "WHERE w.bound IS NOT NULL AND locked.balance_minor + w.delta > w.bound) "
        "RETURNING account_balances.account_code"
    )
    return sa.text(sql).bindparams(**params)
