"""What the ledger answers with: stored entries, balances, trial balance, periods, anomalies."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from exchange.ledger.accounts import AccountKind, Side
from exchange.ledger.entries import Entry, EntryKind, Posting


class LedgerEntry(msgspec.Struct, kw_only=True):
    """A stored entry. Postings are signed: debit positive, credit negative."""

    id: uuid.UUID
    kind: EntryKind
    period: str
    lead_id: uuid.UUID | None
    sale_id: uuid.UUID | None
    reverses_id: uuid.UUID | None
    memo: str
    created_at: dt.datetime
    created_by: uuid.UUID | None  # None: posted by the exchange itself (a sale, a failed delivery)
    postings: list[Posting]

    def as_entry(self) -> Entry:
        return Entry(
            id=self.id,
            kind=self.kind,
            postings=tuple(self.postings),
            lead_id=self.lead_id,
            sale_id=self.sale_id,
            reverses_id=self.reverses_id,
            memo=self.memo,
            period=self.period,
        )


class Posted(msgspec.Struct, kw_only=True):
    entry: LedgerEntry
    replayed: bool  # True: the id was posted before with the same postings; nothing moved now


class AccountBalance(msgspec.Struct, kw_only=True):
    """An account over a period (over all time without one). ``debits_minor`` and
    ``credits_minor`` are what moved in the period, both as positive amounts; ``opening_minor``
    and ``closing_minor`` are balances on the account's normal side (exchange.ledger.accounts)."""

    account: str
    kind: AccountKind
    party_id: uuid.UUID | None
    currency: str
    normal_side: Side
    opening_minor: int
    debits_minor: int
    credits_minor: int
    closing_minor: int


class TrialLine(msgspec.Struct, kw_only=True):
    """One account's balance at the end of the period, in the debit or the credit column."""

    account: str
    currency: str
    debit_minor: int
    credit_minor: int


class CurrencyTotal(msgspec.Struct, kw_only=True):
    currency: str
    debits_minor: int
    credits_minor: int
    difference_minor: int  # debits - credits: always 0 in a sound ledger


class TrialBalance(msgspec.Struct, kw_only=True):
    period: str | None  # balances at the end of this period; None: now
    lines: list[TrialLine]
    totals: list[CurrencyTotal]
    balanced: bool


class PeriodInfo(msgspec.Struct, kw_only=True):
    period: str
    closed: bool
    closed_at: dt.datetime | None
    closed_by: uuid.UUID | None  # None when closed from the CLI


class Anomaly(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str  # one of exchange.ledger.reconcile.ANOMALIES
    detail: str
    sale_id: uuid.UUID | None = None
    entry_id: uuid.UUID | None = None
    account: str | None = None


class Reconciliation(msgspec.Struct, kw_only=True):
    period: str | None
    sales_checked: int
    anomalies: list[Anomaly]
    ok: bool
