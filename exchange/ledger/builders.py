"""Entries for each business event. Pure: amounts in, a balanced ``Entry`` out.

Legs of zero are left out (a sale with no margin has no revenue leg). Events that happen once
per subject (a sale, its return, a reversal) get ids derived from the subject, so a replay
carries the same id; events a person records (deposits, payouts, adjustments) take the id the
caller chose, which is then its idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from exchange.ledger import accounts
from exchange.ledger.entries import Entry, EntryKind, Posting, entry_id


def _legs(currency: str, *legs: tuple[str, int]) -> tuple[Posting, ...]:
    return tuple(Posting(code, amount, currency) for code, amount in legs if amount != 0)


def _positive(name: str, amount_minor: int) -> None:
    if amount_minor <= 0:
        raise ValueError(f"{name} must be positive, got {amount_minor}")


def sale_entry(
    sale_id: uuid.UUID,
    lead_id: uuid.UUID,
    buyer: uuid.UUID,
    supplier: uuid.UUID,
    price_minor: int,
    payout_minor: int,
    currency: str,
    *,
    memo: str = "",
) -> Entry:
    """The buyer pays the price; the supplier is owed the payout; the exchange keeps the rest."""
    _positive("price_minor", price_minor)
    if not 0 <= payout_minor <= price_minor:  # no-loss: the exchange never pays out more
        raise ValueError(f"payout {payout_minor} must be between 0 and the price {price_minor}")
    return Entry(
        id=entry_id(EntryKind.SALE.value, sale_id),
        kind=EntryKind.SALE,
        postings=_legs(
            currency,
            (accounts.buyer(buyer), price_minor),
            (accounts.supplier(supplier), -payout_minor),
            (accounts.revenue(currency), -(price_minor - payout_minor)),
        ),
        lead_id=lead_id,
        sale_id=sale_id,
        memo=memo or f"sale {sale_id}",
    )


def return_entry(
    sale_id: uuid.UUID,
    lead_id: uuid.UUID,
    buyer: uuid.UUID,
    supplier: uuid.UUID,
    price_minor: int,
    payout_minor: int,
    currency: str,
    *,
    claw_back_payout: bool,
    memo: str = "",
) -> Entry:
    """The buyer gets the whole price back. With ``claw_back_payout`` (inside the supplier's
    hold period, or by its terms) the supplier gives its payout back and the exchange its
    margin; without it the exchange bears the whole refund."""
    _positive("price_minor", price_minor)
    if not 0 <= payout_minor <= price_minor:
        raise ValueError(f"payout {payout_minor} must be between 0 and the price {price_minor}")
    supplier_back = payout_minor if claw_back_payout else 0
    return Entry(
        id=entry_id(EntryKind.RETURN.value, sale_id),
        kind=EntryKind.RETURN,
        postings=_legs(
            currency,
            (accounts.buyer(buyer), -price_minor),
            (accounts.supplier(supplier), supplier_back),
            (accounts.revenue(currency), price_minor - supplier_back),
        ),
        lead_id=lead_id,
        sale_id=sale_id,
        memo=memo or f"return of sale {sale_id}",
    )


def reversal_entry(original: Entry, *, memo: str = "") -> Entry:
    """Undo ``original`` exactly, as a new entry (the journal is append-only)."""
    if original.kind is EntryKind.REVERSAL:
        raise ValueError("a reversal is not reversed; post the correction as a new entry")
    return Entry(
        id=entry_id(EntryKind.REVERSAL.value, original.id),
        kind=EntryKind.REVERSAL,
        postings=tuple(Posting(p.account, -p.amount_minor, p.currency) for p in original.postings),
        lead_id=original.lead_id,
        sale_id=original.sale_id,
        reverses_id=original.id,
        memo=memo or f"reversal of {original.kind.value} {original.id}",
    )


def deposit_entry(
    id: uuid.UUID, buyer: uuid.UUID, amount_minor: int, currency: str, *, memo: str = ""
) -> Entry:
    """Money received from a buyer: the exchange's cash goes up, and so does the buyer's balance."""
    _positive("amount_minor", amount_minor)
    return Entry(
        id=id,
        kind=EntryKind.DEPOSIT,
        postings=_legs(
            currency,
            (accounts.cash(currency), amount_minor),
            (accounts.buyer(buyer), -amount_minor),
        ),
        memo=memo or "deposit",
    )


def payout_entry(
    id: uuid.UUID, supplier: uuid.UUID, amount_minor: int, currency: str, *, memo: str = ""
) -> Entry:
    """Money paid to a supplier: what we owe it goes down, and so does our cash."""
    _positive("amount_minor", amount_minor)
    return Entry(
        id=id,
        kind=EntryKind.PAYOUT,
        postings=_legs(
            currency,
            (accounts.supplier(supplier), amount_minor),
            (accounts.cash(currency), -amount_minor),
        ),
        memo=memo or "payout",
    )


def adjustment_entry(
    id: uuid.UUID,
    postings: Iterable[Posting],
    *,
    memo: str,
    lead_id: uuid.UUID | None = None,
    sale_id: uuid.UUID | None = None,
    period: str | None = None,
) -> Entry:
    """Any balanced correction by finance; ``check_entry`` says whether it balances."""
    return Entry(
        id=id,
        kind=EntryKind.ADJUSTMENT,
        postings=tuple(postings),
        lead_id=lead_id,
        sale_id=sale_id,
        memo=memo,
        period=period,
    )
