"""The ledger's pure core: account codes, entry builders, the rules every entry obeys, and the
pairing of sales with charges. No database."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import ledger
from exchange.ledger import accounts
from exchange.ledger.entries import MEMO_CHARS_MAX, sums
from exchange.ledger.reconcile import (
    AMOUNT_MISMATCH,
    CHARGE_WITHOUT_DELIVERY,
    DELIVERY_WITHOUT_CHARGE,
    DOUBLE_CHARGE,
    RETURN_WITHOUT_CHARGE,
)

SETTINGS = settings(max_examples=200, deadline=None)
BUYER = uuid.UUID("01900000-0000-7000-8000-000000000001")
SUPPLIER = uuid.UUID("01900000-0000-7000-8000-000000000002")
SALE = uuid.UUID("01900000-0000-7000-8000-0000000000aa")
LEAD = uuid.UUID("01900000-0000-7000-8000-0000000000bb")
NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.timezone.utc)


def paths(entry: ledger.Entry) -> list[str]:
    return [p.path for p in ledger.check_entry(entry)]


def adjustment(*legs: tuple[str, int], currency: str = "USD", **extra) -> ledger.Entry:
    postings = [ledger.Posting(code, amount, currency) for code, amount in legs]
    return ledger.adjustment_entry(uuid.uuid4(), postings, memo="fix", **extra)


def stored(entry: ledger.Entry) -> ledger.LedgerEntry:
    return ledger.LedgerEntry(
        id=entry.id,
        kind=entry.kind,
        period="2025-03",
        lead_id=entry.lead_id,
        sale_id=entry.sale_id,
        reverses_id=entry.reverses_id,
        memo=entry.memo,
        created_at=NOW,
        created_by=None,
        postings=list(entry.postings),
    )


# --- accounts ------------------------------------------------------------------------------------


def test_account_codes_round_trip():
    assert accounts.parse(accounts.buyer(BUYER)) == ledger.Account(
        f"buyer:{BUYER}", ledger.AccountKind.BUYER, BUYER, None
    )
    assert accounts.parse(accounts.revenue("EUR")).currency == "EUR"
    assert accounts.parse(accounts.cash("USD")).kind is ledger.AccountKind.CASH


@pytest.mark.parametrize(
    "code",
    [
        "buyer:nope",
        "buyer:0190ABCD-0000-7000-8000-000000000001",
        f"seller:{BUYER}",
        "exchange:revenue",
        "exchange:cash:usd",
        "exchange:fees:USD",
        f"buyer:{BUYER}:x",
        "",
    ],
)
def test_codes_that_name_no_account(code):
    assert accounts.parse(code) is None


def test_normal_side_balances():
    # A deposit of 100 credits the buyer (net debit -100): the buyer has 100 on its normal side.
    assert ledger.normal_balance(ledger.AccountKind.BUYER, -100) == 100
    assert ledger.normal_balance(ledger.AccountKind.CASH, 100) == 100
    assert ledger.normal_balance(ledger.AccountKind.SUPPLIER, -40) == 40


# --- periods -------------------------------------------------------------------------------------


def test_periods_are_utc_months():
    late_in_chicago = dt.datetime(2025, 1, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    assert ledger.period_of(late_in_chicago) == "2025-02"
    assert ledger.period_end("2025-12") == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert (
        ledger.is_period("2025-09")
        and not ledger.is_period("2025-13")
        and not ledger.is_period("2025-9")
    )
    with pytest.raises(ValueError):
        ledger.period_of(dt.datetime(2025, 1, 1))


# --- builders ------------------------------------------------------------------------------------


def test_a_sale_debits_the_buyer_and_credits_supplier_and_revenue():
    entry = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD")
    assert entry.postings == (
        ledger.Posting(f"buyer:{BUYER}", 2500, "USD"),
        ledger.Posting(f"supplier:{SUPPLIER}", -2000, "USD"),
        ledger.Posting("exchange:revenue:USD", -500, "USD"),
    )
    assert (entry.kind, entry.sale_id, entry.lead_id) == (ledger.EntryKind.SALE, SALE, LEAD)
    assert ledger.check_entry(entry) == []


def test_a_replayed_sale_has_the_same_id_and_hash():
    first = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD")
    again = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD", memo="retry 3")
    other = ledger.sale_entry(uuid.uuid4(), LEAD, BUYER, SUPPLIER, 2500, 2000, "USD")
    assert first.id == again.id == ledger.entry_id("sale", SALE)
    assert ledger.entry_hash(first) == ledger.entry_hash(again)  # the memo is not what moves money
    assert other.id != first.id


def test_a_sale_without_margin_has_no_revenue_leg():
    entry = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 1000, 1000, "USD")
    assert [p.account for p in entry.postings] == [f"buyer:{BUYER}", f"supplier:{SUPPLIER}"]


@pytest.mark.parametrize(("price", "payout"), [(0, 0), (100, 101), (100, -1), (-5, 0)])
def test_a_sale_never_loses_money_or_moves_nothing(price, payout):
    with pytest.raises(ValueError):
        ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, price, payout, "USD")


def test_a_return_refunds_the_buyer_and_claws_back_per_terms():
    back = ledger.return_entry(
        SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD", claw_back_payout=True
    )
    assert {p.account: p.amount_minor for p in back.postings} == {
        f"buyer:{BUYER}": -2500,
        f"supplier:{SUPPLIER}": 2000,
        "exchange:revenue:USD": 500,
    }
    kept = ledger.return_entry(
        SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD", claw_back_payout=False
    )
    assert {p.account: p.amount_minor for p in kept.postings} == {
        f"buyer:{BUYER}": -2500,
        "exchange:revenue:USD": 2500,
    }
    assert back.id == kept.id == ledger.entry_id("return", SALE)  # one return per sale


def test_a_reversal_undoes_exactly_and_only_once():
    sale = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD")
    undo = ledger.reversal_entry(sale)
    assert [p.amount_minor for p in undo.postings] == [-2500, 2000, 500]
    assert (undo.reverses_id, undo.sale_id, undo.kind) == (sale.id, SALE, ledger.EntryKind.REVERSAL)
    assert ledger.reversal_entry(sale).id == undo.id
    with pytest.raises(ValueError):
        ledger.reversal_entry(undo)


def test_deposits_and_payouts_move_cash():
    deposit = ledger.deposit_entry(uuid.uuid4(), BUYER, 10_000, "USD")
    assert {p.account: p.amount_minor for p in deposit.postings} == {
        "exchange:cash:USD": 10_000,
        f"buyer:{BUYER}": -10_000,
    }
    payout = ledger.payout_entry(uuid.uuid4(), SUPPLIER, 700, "USD")
    assert {p.account: p.amount_minor for p in payout.postings} == {
        f"supplier:{SUPPLIER}": 700,
        "exchange:cash:USD": -700,
    }
    with pytest.raises(ValueError):
        ledger.deposit_entry(uuid.uuid4(), BUYER, 0, "USD")


# --- check_entry ---------------------------------------------------------------------------------


def test_an_unbalanced_entry_is_refused():
    entry = adjustment((f"buyer:{BUYER}", 100), ("exchange:cash:USD", -90))
    problems = ledger.check_entry(entry)
    assert [p.path for p in problems] == ["postings"]
    assert "sum to 10" in problems[0].reason


def test_one_posting_zero_amounts_and_too_many_postings_are_refused():
    assert paths(adjustment((f"buyer:{BUYER}", 0), ("exchange:cash:USD", 0))) == [
        "postings[0].amount_minor",
        "postings[1].amount_minor",
    ]
    single = ledger.adjustment_entry(
        uuid.uuid4(), [ledger.Posting("exchange:cash:USD", 0, "USD")], memo="x"
    )
    assert "postings" in paths(single)
    legs = [("exchange:cash:USD", 1)] * ledger.POSTINGS_MAX + [
        ("exchange:revenue:USD", -ledger.POSTINGS_MAX)
    ]
    assert paths(adjustment(*legs)) == ["postings"]
    huge = ledger.AMOUNT_MAX_MINOR + 1
    assert paths(adjustment(("exchange:cash:USD", huge), ("exchange:revenue:USD", -huge))) == [
        "postings[0].amount_minor",
        "postings[1].amount_minor",
    ]


def test_accounts_and_currencies_are_checked():
    assert paths(adjustment(("buyer:someone", 5), ("exchange:cash:USD", -5))) == [
        "postings[0].account"
    ]
    # An exchange account is per currency: USD cash takes no EUR.
    assert paths(
        adjustment(("exchange:cash:USD", 5), ("exchange:revenue:EUR", -5), currency="EUR")
    ) == ["postings[0].currency"]
    mixed = ledger.adjustment_entry(
        uuid.uuid4(),
        [
            ledger.Posting(f"buyer:{BUYER}", 5, "USD"),
            ledger.Posting(f"buyer:{BUYER}", -5, "EUR"),
            ledger.Posting("exchange:cash:USD", -5, "USD"),
            ledger.Posting("exchange:cash:EUR", 5, "EUR"),
        ],
        memo="two currencies on one account",
    )
    assert paths(mixed) == ["postings[1].currency"]
    assert paths(
        adjustment(("exchange:cash:usd", 5), ("exchange:revenue:usd", -5), currency="usd")
    ) == [
        "postings[0].account",
        "postings[0].currency",
        "postings[1].account",
        "postings[1].currency",
    ]


def test_kind_rules_memo_and_period():
    sale = ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 100, 50, "USD")
    assert paths(msgspec.structs.replace(sale, sale_id=None)) == ["sale_id"]
    assert paths(msgspec.structs.replace(sale, reverses_id=uuid.uuid4())) == ["reverses_id"]
    assert paths(msgspec.structs.replace(ledger.reversal_entry(sale), reverses_id=None)) == [
        "reverses_id"
    ]
    assert paths(msgspec.structs.replace(sale, memo="x" * (MEMO_CHARS_MAX + 1))) == ["memo"]
    assert paths(msgspec.structs.replace(sale, period="2025-1")) == ["period"]


def test_the_hash_ignores_order_and_memo_but_not_money():
    a = ledger.Posting(f"buyer:{BUYER}", 100, "USD")
    b = ledger.Posting("exchange:cash:USD", -100, "USD")
    one = ledger.adjustment_entry(SALE, [a, b], memo="one")
    two = ledger.adjustment_entry(SALE, [b, a], memo="two")
    three = ledger.adjustment_entry(
        SALE,
        [ledger.Posting(a.account, 101, "USD"), ledger.Posting(b.account, -101, "USD")],
        memo="one",
    )
    assert ledger.entry_hash(one) == ledger.entry_hash(two) != ledger.entry_hash(three)


# --- property: whatever the builders make balances -----------------------------------------------

ids = st.uuids()
currency = st.sampled_from(["USD", "EUR", "GBP"])
price_payout = st.integers(1, 10**9).flatmap(
    lambda price: st.tuples(st.just(price), st.integers(0, price))
)


@st.composite
def built_entries(draw: st.DrawFn) -> ledger.Entry:
    price, payout = draw(price_payout)
    ccy = draw(currency)
    sale = ledger.sale_entry(draw(ids), draw(ids), draw(ids), draw(ids), price, payout, ccy)
    choices = [
        sale,
        ledger.reversal_entry(sale),
        ledger.return_entry(
            draw(ids),
            draw(ids),
            draw(ids),
            draw(ids),
            price,
            payout,
            ccy,
            claw_back_payout=draw(st.booleans()),
        ),
        ledger.deposit_entry(draw(ids), draw(ids), price, ccy),
        ledger.payout_entry(draw(ids), draw(ids), price, ccy),
    ]
    return draw(st.sampled_from(choices))


@SETTINGS
@given(built_entries())
def test_every_built_entry_balances(entry):
    assert ledger.check_entry(entry) == []
    assert all(net == 0 for net in sums(entry.postings).values())
    assert len({p.account for p in entry.postings}) == len(entry.postings)  # one leg per account


@SETTINGS
@given(built_entries())
def test_a_reversal_and_its_original_cancel_out(entry):
    if entry.kind is ledger.EntryKind.REVERSAL:
        return
    undo = ledger.reversal_entry(entry)
    net: dict[str, int] = {}
    for p in (*entry.postings, *undo.postings):
        net[p.account] = net.get(p.account, 0) + p.amount_minor
    assert set(net.values()) == {0}


# --- pairing sales with charges (pure) -----------------------------------------------------------

FACTS = ledger.SaleFacts(
    buyer_id=BUYER, supplier_id=SUPPLIER, price_minor=2500, payout_minor=2000, currency="USD"
)


def codes(found: list[ledger.Anomaly]) -> list[str]:
    return [a.code for a in found]


def test_a_delivered_sale_with_its_one_charge_reconciles():
    sale = stored(ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD"))
    assert ledger.pair_sales([sale], {SALE: FACTS}, [SALE]) == []


def test_pairing_finds_each_anomaly():
    sale = stored(ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD"))
    assert codes(ledger.pair_sales([], {SALE: FACTS}, [SALE])) == [DELIVERY_WITHOUT_CHARGE]
    assert codes(ledger.pair_sales([sale], {}, [SALE])) == [CHARGE_WITHOUT_DELIVERY]
    twice = msgspec.structs.replace(sale, id=uuid.uuid4())  # charged again under another id
    assert codes(ledger.pair_sales([sale, twice], {SALE: FACTS}, [SALE])) == [DOUBLE_CHARGE]
    cheaper = ledger.SaleFacts(
        buyer_id=BUYER, supplier_id=SUPPLIER, price_minor=2400, payout_minor=2000, currency="USD"
    )
    assert codes(ledger.pair_sales([sale], {SALE: cheaper}, [SALE])) == [AMOUNT_MISMATCH]
    back = stored(
        ledger.return_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD", claw_back_payout=True)
    )
    undo = stored(ledger.reversal_entry(sale.as_entry()))
    assert codes(ledger.pair_sales([sale, undo, back], {}, [SALE])) == [RETURN_WITHOUT_CHARGE]


def test_a_failed_delivery_reversed_reconciles():
    sale = stored(ledger.sale_entry(SALE, LEAD, BUYER, SUPPLIER, 2500, 2000, "USD"))
    undo = stored(ledger.reversal_entry(sale.as_entry()))
    assert ledger.pair_sales([sale, undo], {}, [SALE]) == []
    assert codes(ledger.pair_sales([sale, undo], {SALE: FACTS}, [SALE])) == [
        DELIVERY_WITHOUT_CHARGE
    ]
