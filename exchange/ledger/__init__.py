"""The double-entry ledger: accounts, journal entries, balances, statements, reconciliation.

Pure core (no database): ``accounts``, ``entries``, ``builders``, ``periods``. Database
functions take an ``AsyncConnection`` and run inside the caller's transaction: ``journal``
(post, reverse, close a period), ``reports``, ``statements``, ``reconcile``.
Signs: debit positive, credit negative; see ``exchange.ledger.accounts`` for what each
account's balance means.
"""

from exchange.ledger.accounts import NORMAL_SIDE, Account, AccountKind, Side, normal_balance
from exchange.ledger.builders import (
    adjustment_entry,
    deposit_entry,
    payout_entry,
    return_entry,
    reversal_entry,
    sale_entry,
)
from exchange.ledger.closing import close_period, list_periods
from exchange.ledger.entries import (
    AMOUNT_MAX_MINOR,
    POSTINGS_MAX,
    Entry,
    EntryKind,
    Posting,
    check_entry,
    entry_hash,
    entry_id,
)
from exchange.ledger.errors import (
    INSUFFICIENT_BALANCE,
    EntryConflict,
    InsufficientFunds,
    InvalidEntry,
    LedgerError,
    PeriodClosed,
    PeriodNotOver,
)
from exchange.ledger.journal import get_entry, post_entry, reverse_entry
from exchange.ledger.periods import is_period, period_end, period_of, period_start
from exchange.ledger.reconcile import ANOMALIES, SaleFacts, pair_sales, reconcile
from exchange.ledger.records import (
    AccountBalance,
    Anomaly,
    CurrencyTotal,
    LedgerEntry,
    PeriodInfo,
    Posted,
    Reconciliation,
    TrialBalance,
    TrialLine,
)
from exchange.ledger.reports import balance, balances, lead_ledger, spendable, trial_balance
from exchange.ledger.statements import statement_csv

__all__ = [
    "AMOUNT_MAX_MINOR",
    "ANOMALIES",
    "INSUFFICIENT_BALANCE",
    "NORMAL_SIDE",
    "POSTINGS_MAX",
    "Account",
    "AccountBalance",
    "AccountKind",
    "Anomaly",
    "CurrencyTotal",
    "Entry",
    "EntryConflict",
    "EntryKind",
    "InsufficientFunds",
    "InvalidEntry",
    "LedgerEntry",
    "LedgerError",
    "PeriodClosed",
    "PeriodInfo",
    "PeriodNotOver",
    "Posted",
    "Posting",
    "Reconciliation",
    "SaleFacts",
    "Side",
    "TrialBalance",
    "TrialLine",
    "adjustment_entry",
    "balance",
    "balances",
    "check_entry",
    "close_period",
    "deposit_entry",
    "entry_hash",
    "entry_id",
    "get_entry",
    "is_period",
    "lead_ledger",
    "list_periods",
    "normal_balance",
    "pair_sales",
    "payout_entry",
    "period_end",
    "period_of",
    "period_start",
    "post_entry",
    "reconcile",
    "return_entry",
    "reversal_entry",
    "reverse_entry",
    "sale_entry",
    "spendable",
    "statement_csv",
    "trial_balance",
]
