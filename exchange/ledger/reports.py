"""Reading the books: one account, balances per party and period, a lead's entries, the trial
balance. Reports sum the postings themselves (the truth); only ``balance`` of a party account
reads the running balance row that posting maintains (the same number, one row read)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ledger import accounts
from exchange.ledger.accounts import NORMAL_SIDE, AccountKind, normal_balance
from exchange.ledger.journal import entries_where
from exchange.ledger.records import (
    AccountBalance,
    CurrencyTotal,
    LedgerEntry,
    TrialBalance,
    TrialLine,
)
from exchange.store.tables import (
    account_balances,
    buyer_accounts,
    journal_entries,
    ledger_accounts,
    postings,
)

_AMOUNT = postings.c.amount_minor
_JOINED = postings.join(journal_entries, journal_entries.c.id == postings.c.entry_id).join(
    ledger_accounts, ledger_accounts.c.code == postings.c.account_code
)


def _sum(expr: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(expr), 0)


async def balance(conn: AsyncConnection, code: str) -> int:
    """The account's balance now, on its normal side; 0 for an account never posted to."""
    account = accounts.parse(code)
    if account is None:
        raise ValueError(f"{code!r} names no account")
    if account.kind in accounts.CACHED_KINDS:
        query = sa.select(account_balances.c.balance_minor).where(
            account_balances.c.account_code == code
        )
    else:
        query = sa.select(_sum(_AMOUNT)).where(postings.c.account_code == code)
    return normal_balance(account.kind, int((await conn.execute(query)).scalar() or 0))


async def spendable(conn: AsyncConnection, buyer_id: uuid.UUID) -> int:
    """What a buyer may still be charged: its balance plus its credit limit."""
    limit = (
        await conn.execute(
            sa.select(buyer_accounts.c.credit_limit_minor).where(
                buyer_accounts.c.buyer_id == buyer_id
            )
        )
    ).scalar()
    return await balance(conn, accounts.buyer(buyer_id)) + int(limit or 0)


async def balances(
    conn: AsyncConnection, *, party_id: uuid.UUID | None = None, period: str | None = None
) -> list[AccountBalance]:
    """Every account (or a party's) over ``period``: opening, debits, credits, closing. Without
    a period, over all time (the opening is then 0)."""
    entry_period = journal_entries.c.period
    if period is None:
        opening = sa.literal(0)
        in_range = sa.true()
        moved = sa.true()
    else:
        opening = _sum(sa.case((entry_period < period, _AMOUNT), else_=0))
        in_range = entry_period <= period
        moved = entry_period == period
    query = (
        sa.select(
            ledger_accounts.c.code,
            ledger_accounts.c.kind,
            ledger_accounts.c.party_id,
            ledger_accounts.c.currency,
            opening.label("opening"),
            _sum(sa.case((sa.and_(moved, _AMOUNT > 0), _AMOUNT), else_=0)).label("debits"),
            _sum(sa.case((sa.and_(moved, _AMOUNT < 0), -_AMOUNT), else_=0)).label("credits"),
        )
        .select_from(_JOINED)
        .where(in_range)
        .group_by(
            ledger_accounts.c.code,
            ledger_accounts.c.kind,
            ledger_accounts.c.party_id,
            ledger_accounts.c.currency,
        )
        .order_by(ledger_accounts.c.code)
    )
    if party_id is not None:
        query = query.where(ledger_accounts.c.party_id == party_id)
    result = []
    for row in await conn.execute(query):
        kind = AccountKind(row.kind)
        opening_net, debits, credits = int(row.opening), int(row.debits), int(row.credits)
        result.append(
            AccountBalance(
                account=row.code,
                kind=kind,
                party_id=row.party_id,
                currency=row.currency,
                normal_side=NORMAL_SIDE[kind],
                opening_minor=normal_balance(kind, opening_net),
                debits_minor=debits,
                credits_minor=credits,
                closing_minor=normal_balance(kind, opening_net + debits - credits),
            )
        )
    return result


async def lead_ledger(conn: AsyncConnection, lead_id: uuid.UUID) -> list[LedgerEntry]:
    """Every entry about a lead (its sales, returns, reversals, adjustments), oldest first."""
    return await entries_where(conn, journal_entries.c.lead_id == lead_id)


async def trial_balance(conn: AsyncConnection, period: str | None = None) -> TrialBalance:
    """Each account's balance at the end of ``period`` (now, without one) in the debit or the
    credit column. Per currency the columns are equal: the difference is always zero."""
    query = (
        sa.select(postings.c.account_code, postings.c.currency, _sum(_AMOUNT).label("net"))
        .select_from(postings.join(journal_entries, journal_entries.c.id == postings.c.entry_id))
        .group_by(postings.c.account_code, postings.c.currency)
        .order_by(postings.c.account_code, postings.c.currency)
    )
    if period is not None:
        query = query.where(journal_entries.c.period <= period)
    lines: list[TrialLine] = []
    totals: dict[str, list[int]] = {}
    for code, currency, net in await conn.execute(query):
        net = int(net)
        debit, credit = max(net, 0), max(-net, 0)
        lines.append(
            TrialLine(account=code, currency=currency, debit_minor=debit, credit_minor=credit)
        )
        column = totals.setdefault(currency, [0, 0])
        column[0] += debit
        column[1] += credit
    sums = [
        CurrencyTotal(currency=c, debits_minor=d, credits_minor=k, difference_minor=d - k)
        for c, (d, k) in sorted(totals.items())
    ]
    return TrialBalance(
        period=period, lines=lines, totals=sums, balanced=all(t.difference_minor == 0 for t in sums)
    )
