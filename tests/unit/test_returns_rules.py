"""The pure rules of returns (window, monthly rate, claw-back and hold) and how reconciliation
pairs a returned sale with its return."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from exchange import ledger
from exchange.campaigns.terms import ReturnPayout
from exchange.ledger.reconcile import RETURN_MISMATCH
from exchange.returns import rules

SOLD = dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)
BUYER, SUPPLIER, SALE, LEAD = (uuid.UUID(int=n) for n in (1, 2, 3, 4))


def test_the_window_is_inclusive_and_zero_days_take_no_returns():
    assert rules.within_window(SOLD, 7, SOLD + 7 * DAY)
    assert not rules.within_window(SOLD, 7, SOLD + 7 * DAY + dt.timedelta(microseconds=1))
    assert not rules.within_window(SOLD, 0, SOLD)
    assert rules.window_closes_at(SOLD, 0) is None


def test_the_rate_is_exact_integer_arithmetic():
    assert rules.rate_allows(0, 5, 2000)  # 1 of 5 is 20 %
    assert not rules.rate_allows(1, 5, 2000)  # 2 of 5 is 40 %
    assert not rules.rate_allows(0, 4, 2000)  # 1 of 4 is 25 %
    assert rules.rate_allows(99, 1, 0)  # 0: no limit


def test_claw_back_follows_the_policy_and_the_hold():
    claw, absorb = ReturnPayout.CLAW_BACK, ReturnPayout.ABSORB
    assert rules.claws_back(claw, 0, SOLD, SOLD + 300 * DAY)  # no hold: always
    assert rules.claws_back(claw, 3, SOLD, SOLD + 3 * DAY)
    assert not rules.claws_back(claw, 3, SOLD, SOLD + 3 * DAY + dt.timedelta(seconds=1))
    assert not rules.claws_back(absorb, 0, SOLD, SOLD)


def _stored(entry: ledger.Entry) -> ledger.LedgerEntry:
    return ledger.LedgerEntry(
        id=entry.id, kind=entry.kind, period="2026-03", lead_id=entry.lead_id,
        sale_id=entry.sale_id, reverses_id=entry.reverses_id, memo=entry.memo,
        created_at=SOLD, created_by=None, postings=list(entry.postings),
    )  # fmt: skip


def test_a_returned_sale_pairs_with_exactly_its_return():
    sale = _stored(ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD"))
    back = _stored(
        ledger.return_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD", claw_back_payout=False)
    )
    facts = ledger.SaleFacts(
        buyer_id=BUYER, supplier_id=SUPPLIER, price_minor=2500, payout_minor=2000, currency="USD"
    )
    returned = msgspec.structs.replace(facts, returned=True)
    assert ledger.pair_sales([sale, back], {SALE: returned}, [SALE]) == []
    assert [a.code for a in ledger.pair_sales([sale], {SALE: returned}, [SALE])] == [
        RETURN_MISMATCH
    ]
    assert [a.code for a in ledger.pair_sales([sale, back], {SALE: facts}, [SALE])] == [
        RETURN_MISMATCH
    ]
    short = _stored(
        ledger.return_entry(SALE, LEAD, BUYER, SUPPLIER, 2400, 2000, "USD", claw_back_payout=True)
    )
    assert [a.code for a in ledger.pair_sales([sale, short], {SALE: returned}, [SALE])] == [
        RETURN_MISMATCH
    ]
