"""A party's statement for one period, as CSV: an opening line, every posting, a closing line.

Amounts are integer minor units; ``balance_minor`` is the running balance on the account's
normal side (for a buyer: prepaid money left; for a supplier: what the exchange owes it).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ledger.accounts import AccountKind, normal_balance
from exchange.ledger.periods import period_end, period_start
from exchange.store.tables import journal_entries, ledger_accounts, postings

COLUMNS = (
    "date",
    "entry_id",
    "kind",
    "lead_id",
    "sale_id",
    "memo",
    "account",
    "currency",
    "debit_minor",
    "credit_minor",
    "balance_minor",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): memos are
# typed by people, so such a memo is written with a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


async def statement_csv(conn: AsyncConnection, party_id: uuid.UUID, period: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    query = (
        sa.select(ledger_accounts.c.code, ledger_accounts.c.kind, ledger_accounts.c.currency)
        .where(ledger_accounts.c.party_id == party_id)
        .order_by(ledger_accounts.c.code)
    )
    for code, kind, currency in (await conn.execute(query)).all():
        await _account(conn, writer, code, AccountKind(kind), currency, period)
    return out.getvalue()


async def _account(
    conn: AsyncConnection, writer: Any, code: str, kind: AccountKind, currency: str, period: str
) -> None:
    joined = postings.join(journal_entries, journal_entries.c.id == postings.c.entry_id)
    before = (
        sa.select(sa.func.coalesce(sa.func.sum(postings.c.amount_minor), 0))
        .select_from(joined)
        .where(postings.c.account_code == code, journal_entries.c.period < period)
    )
    net = int((await conn.execute(before)).scalar_one())
    start = period_start(period).date().isoformat()
    writer.writerow(
        [
            start,
            "",
            "opening",
            "",
            "",
            "opening balance",
            code,
            currency,
            "",
            "",
            normal_balance(kind, net),
        ]
    )
    rows = await conn.execute(
        sa.select(
            journal_entries.c.created_at,
            journal_entries.c.id,
            journal_entries.c.kind,
            journal_entries.c.lead_id,
            journal_entries.c.sale_id,
            journal_entries.c.memo,
            postings.c.amount_minor,
        )
        .select_from(joined)
        .where(postings.c.account_code == code, journal_entries.c.period == period)
        .order_by(journal_entries.c.created_at, journal_entries.c.id, postings.c.line)
    )
    for row in rows:
        amount = int(row.amount_minor)
        net += amount
        writer.writerow(
            [
                row.created_at.isoformat(),
                row.id,
                row.kind,
                row.lead_id or "",
                row.sale_id or "",
                _cell(row.memo),
                code,
                currency,
                max(amount, 0) or "",
                max(-amount, 0) or "",
                normal_balance(kind, net),
            ]
        )
    end = (period_end(period) - dt.timedelta(days=1)).date().isoformat()  # the period's last day
    writer.writerow(
        [
            end,
            "",
            "closing",
            "",
            "",
            "closing balance",
            code,
            currency,
            "",
            "",
            normal_balance(kind, net),
        ]
    )
