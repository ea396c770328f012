"""Reconciliation: every delivered sale pairs with exactly one standing charge (which carries
its payout), and every anomaly is listed.

A *standing* entry is one no reversal undoes. What counts as delivered comes from the
``sales`` table (a row with status ``delivered``, or ``returned``: delivered, charged, then
returned) or from the caller, who may know better (``delivered=``). A returned sale also pairs
with exactly one standing return that refunds its price. The pairing itself is pure
(``pair_sales``); ``reconcile`` gathers the facts and adds the checks that need the database:
unbalanced entries and balance drift.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ledger import accounts
from exchange.ledger.accounts import AccountKind
from exchange.ledger.entries import EntryKind
from exchange.ledger.journal import entries_where
from exchange.ledger.periods import period_end, period_start
from exchange.ledger.records import Anomaly, LedgerEntry, Reconciliation
from exchange.store.tables import (
    account_balances,
    journal_entries,
    ledger_accounts,
    postings,
    sales,
)

# Stable codes, as finance reads them.
CHARGE_WITHOUT_DELIVERY = "charge_without_delivery"
DELIVERY_WITHOUT_CHARGE = "delivery_without_charge"
DOUBLE_CHARGE = "double_charge"
AMOUNT_MISMATCH = "amount_mismatch"
RETURN_WITHOUT_CHARGE = "return_without_charge"
DOUBLE_RETURN = "double_return"
RETURN_MISMATCH = "return_mismatch"
UNBALANCED_ENTRY = "unbalanced_entry"
BALANCE_DRIFT = "balance_drift"
ANOMALIES = {
    CHARGE_WITHOUT_DELIVERY: "a standing sale charge with no delivered sale",
    DELIVERY_WITHOUT_CHARGE: "a delivered sale with no standing charge",
    DOUBLE_CHARGE: "a sale with more than one standing charge",
    AMOUNT_MISMATCH: "a charge whose buyer, supplier, price or payout differs from the sale's",
    RETURN_WITHOUT_CHARGE: "a standing return of a sale with no standing charge",
    DOUBLE_RETURN: "a sale returned more than once",
    RETURN_MISMATCH: "a returned sale without its return, a return of a sale not marked returned, "
    "or a refund other than the price to the sale's buyer",
    UNBALANCED_ENTRY: "an entry whose postings do not sum to zero per currency, or number under 2",
    BALANCE_DRIFT: "a running balance that differs from the sum of the account's postings",
}
SALE_DELIVERED = "delivered"
SALE_RETURNED = "returned"  # exchange.returns: still a delivered, charged sale, now refunded
CHARGED_STATUSES = (SALE_DELIVERED, SALE_RETURNED)
IDS_PER_QUERY = 500  # well under SQLite's bound on parameters per statement


class SaleFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the sale says was sold, to compare with its charge."""

    buyer_id: uuid.UUID
    supplier_id: uuid.UUID
    price_minor: int
    payout_minor: int
    currency: str
    returned: bool = False  # the sale is marked returned: it has exactly one standing return


def pair_sales(
    entries: Iterable[LedgerEntry],
    delivered: Mapping[uuid.UUID, SaleFacts | None],
    subjects: Iterable[uuid.UUID],
) -> list[Anomaly]:
    """Pair each subject sale with its standing charges and returns. ``delivered`` maps each
    delivered sale to its facts (None: delivered, amounts unknown); ``entries`` hold at least
    every entry about each subject."""
    by_sale: dict[uuid.UUID, list[LedgerEntry]] = defaultdict(list)
    reversed_ids: set[uuid.UUID] = set()
    for entry in entries:
        if entry.reverses_id is not None:
            reversed_ids.add(entry.reverses_id)
        if entry.sale_id is not None:
            by_sale[entry.sale_id].append(entry)
    found: list[Anomaly] = []
    for sale_id in sorted(set(subjects)):

        def flag(
            code: str, detail: str, entry_id: uuid.UUID | None = None, sale: uuid.UUID = sale_id
        ) -> None:
            found.append(Anomaly(code=code, sale_id=sale, entry_id=entry_id, detail=detail))

        mine = [e for e in by_sale.get(sale_id, []) if e.id not in reversed_ids]
        charges = [e for e in mine if e.kind is EntryKind.SALE]
        returns = [e for e in mine if e.kind is EntryKind.RETURN]
        is_delivered = sale_id in delivered
        if is_delivered and not charges:
            flag(DELIVERY_WITHOUT_CHARGE, "delivered, never charged")
        if charges and not is_delivered:
            flag(CHARGE_WITHOUT_DELIVERY, "charged, no delivered sale", charges[0].id)
        if len(charges) > 1:
            flag(DOUBLE_CHARGE, f"{len(charges)} charges: " + ", ".join(str(c.id) for c in charges))
        if returns and not charges:
            flag(RETURN_WITHOUT_CHARGE, "returned, but no standing charge", returns[0].id)
        if len(returns) > 1:
            flag(DOUBLE_RETURN, f"{len(returns)} returns")
        for charge in charges:
            problem = _charge_problem(charge, delivered.get(sale_id))
            if problem:
                flag(AMOUNT_MISMATCH, problem, charge.id)
        facts = delivered.get(sale_id)
        if facts is not None:
            problem = _return_problem(returns, facts)
            if problem:
                flag(RETURN_MISMATCH, problem, returns[0].id if returns else None)
    return found


def _return_problem(returns: list[LedgerEntry], facts: SaleFacts) -> str | None:
    """A sale marked returned has a return refunding its price to its buyer; others have none."""
    if facts.returned and not returns:
        return "marked returned, no standing return"
    if returns and not facts.returned:
        return "a standing return, the sale is not marked returned"
    buyer = accounts.buyer(facts.buyer_id)
    for entry in returns:
        refund = [p for p in entry.postings if p.account == buyer and p.currency == facts.currency]
        if [p.amount_minor for p in refund] != [-facts.price_minor]:
            return f"the return does not credit {buyer} the price {facts.price_minor}"
    return None


def _charge_problem(charge: LedgerEntry, facts: SaleFacts | None) -> str | None:
    """A charge debits one buyer and credits at most one supplier (its payout) and revenue."""
    debits = [p for p in charge.postings if p.amount_minor > 0]
    buyers = [p for p in debits if p.account.startswith(f"{AccountKind.BUYER.value}:")]
    payouts = [p for p in charge.postings if p.account.startswith(f"{AccountKind.SUPPLIER.value}:")]
    if len(buyers) != 1 or len(debits) != 1:
        return f"a charge debits exactly one buyer; this one debits {len(debits)} accounts"
    if len(payouts) > 1 or any(p.amount_minor > 0 for p in payouts):
        return "a charge credits at most one supplier, its payout"
    if facts is None:
        return None
    payout = -payouts[0].amount_minor if payouts else 0
    expected = (
        accounts.buyer(facts.buyer_id),
        facts.price_minor,
        facts.payout_minor,
        facts.currency,
    )
    actual = (buyers[0].account, buyers[0].amount_minor, payout, buyers[0].currency)
    if payouts and payouts[0].account != accounts.supplier(facts.supplier_id):
        return f"payout to {payouts[0].account}, the sale's supplier is {facts.supplier_id}"
    if actual != expected:
        return f"charged (account, price, payout, currency) {actual}, the sale says {expected}"
    return None


async def reconcile(
    conn: AsyncConnection,
    period: str | None = None,
    *,
    delivered: Iterable[uuid.UUID] | None = None,
) -> Reconciliation:
    """Reconcile the sales delivered or charged in ``period`` (all, without one), and check
    every entry of the period balances and every running balance equals its postings."""
    charged = sa.select(journal_entries.c.sale_id).where(
        journal_entries.c.sale_id.is_not(None),
        journal_entries.c.kind.in_([EntryKind.SALE.value, EntryKind.RETURN.value]),
    )
    if period is not None:
        charged = charged.where(journal_entries.c.period == period)
    charged_ids = set((await conn.execute(charged.distinct())).scalars())
    if delivered is None:
        facts = await _sales(conn, period=period)
        facts.update(await _sales(conn, ids=charged_ids - set(facts)))  # sold in another period
    else:
        facts = {sale_id: None for sale_id in delivered}
    subjects = charged_ids | set(facts)
    entries: list[LedgerEntry] = []
    for chunk in _chunks(sorted(subjects)):
        # All of a sale's entries, whatever their period: a March charge may be reversed in April.
        entries += await entries_where(conn, journal_entries.c.sale_id.in_(chunk))
    found = pair_sales(entries, facts, subjects)
    found += await _unbalanced(conn, period)
    found += await _drift(conn)
    return Reconciliation(period=period, sales_checked=len(subjects), anomalies=found, ok=not found)


def _chunks(ids: list[uuid.UUID]) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield ids[start : start + IDS_PER_QUERY]


async def _sales(
    conn: AsyncConnection, *, period: str | None = None, ids: set[uuid.UUID] | None = None
) -> dict[uuid.UUID, SaleFacts | None]:
    columns = (
        sales.c.id,
        sales.c.buyer_id,
        sales.c.supplier_id,
        sales.c.price_minor,
        sales.c.payout_minor,
        sales.c.currency,
    )
    # Only a delivered sale is a sale to charge: one still being delivered, or that the buyer
    # rejected, must have no charge (and one that has is `charge_without_delivery`). A returned
    # sale was delivered and charged: its charge stands beside its return.
    delivered = sa.select(*columns, sales.c.status).where(sales.c.status.in_(CHARGED_STATUSES))
    queries = []
    if ids is not None:
        queries = [delivered.where(sales.c.id.in_(chunk)) for chunk in _chunks(sorted(ids))]
    elif period is not None:
        since, until = period_start(period), period_end(period)
        queries = [delivered.where(sales.c.created_at >= since, sales.c.created_at < until)]
    else:
        queries = [delivered]
    found: dict[uuid.UUID, SaleFacts | None] = {}
    for query in queries:
        for row in await conn.execute(query):
            found[row.id] = SaleFacts(
                buyer_id=row.buyer_id,
                supplier_id=row.supplier_id,
                price_minor=int(row.price_minor),
                payout_minor=int(row.payout_minor),
                currency=row.currency,
                returned=row.status == SALE_RETURNED,
            )
    return found


async def _unbalanced(conn: AsyncConnection, period: str | None) -> list[Anomaly]:
    legs = (
        sa.select(
            postings.c.entry_id,
            postings.c.currency,
            sa.func.sum(postings.c.amount_minor).label("net"),
        )
        .group_by(postings.c.entry_id, postings.c.currency)
        .having(sa.func.sum(postings.c.amount_minor) != 0)
    )
    count = sa.func.count(postings.c.entry_id)
    short = (
        sa.select(journal_entries.c.id, count.label("legs"))
        .select_from(
            journal_entries.outerjoin(postings, postings.c.entry_id == journal_entries.c.id)
        )
        .group_by(journal_entries.c.id)
        .having(count < 2)
    )
    if period is not None:
        in_period = sa.select(journal_entries.c.id).where(journal_entries.c.period == period)
        legs = legs.where(postings.c.entry_id.in_(in_period))
        short = short.where(journal_entries.c.period == period)
    found = [
        Anomaly(
            code=UNBALANCED_ENTRY,
            entry_id=entry_id,
            detail=f"{currency} postings sum to {int(net)}",
        )
        for entry_id, currency, net in await conn.execute(legs)
    ]
    found += [
        Anomaly(
            code=UNBALANCED_ENTRY,
            entry_id=entry_id,
            detail=f"{n} posting(s); an entry has at least 2",
        )
        for entry_id, n in await conn.execute(short)
    ]
    return found


async def _drift(conn: AsyncConnection) -> list[Anomaly]:
    """Every party account's running balance against the sum of its postings (all time)."""
    posted = (
        sa.select(postings.c.account_code, sa.func.sum(postings.c.amount_minor).label("net"))
        .group_by(postings.c.account_code)
        .subquery()
    )
    query = (
        sa.select(ledger_accounts.c.code, account_balances.c.balance_minor, posted.c.net)
        .select_from(
            ledger_accounts.outerjoin(
                account_balances, account_balances.c.account_code == ledger_accounts.c.code
            ).outerjoin(posted, posted.c.account_code == ledger_accounts.c.code)
        )
        .where(ledger_accounts.c.kind.in_([k.value for k in accounts.CACHED_KINDS]))
        .order_by(ledger_accounts.c.code)
    )
    found = []
    for code, stored, net in await conn.execute(query):
        summed = int(net or 0)
        if stored is None or int(stored) != summed:
            found.append(
                Anomaly(
                    code=BALANCE_DRIFT,
                    account=code,
                    detail=f"running balance {stored}, postings sum to {summed}",
                )
            )
    return found
