"""Margins: exact splits, rounding, bands, overrides and validation."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.auction import (
    BandedMargin,
    FixedMargin,
    MarginPolicy,
    MarginRule,
    PercentMargin,
    PriceBand,
    payout_for,
    required_margin,
    resolve_margin,
)

BANDS = BandedMargin(
    bands=(
        PriceBand(up_to_minor=1_000, rule=FixedMargin(amount_minor=100)),
        PriceBand(up_to_minor=5_000, rule=PercentMargin(bps=2_000)),
        PriceBand(up_to_minor=None, rule=PercentMargin(bps=1_000, min_margin_minor=600)),
    )
)


@pytest.mark.parametrize(
    ("bid", "expected"),
    [(1_000, (850, 150)), (150, (0, 150)), (100, (0, 100)), (0, (0, 0))],
)
def test_fixed_margin_is_capped_at_the_bid(bid: int, expected: tuple[int, int]) -> None:
    assert payout_for(bid, FixedMargin(amount_minor=150)) == expected


@pytest.mark.parametrize(
    ("bid", "bps", "expected"),
    [
        (1_000, 1_500, (850, 150)),  # exact
        (999, 1_500, (849, 150)),  # 149.85 -> margin rounds up to 150
        (1_001, 1_500, (850, 151)),  # 150.15 -> 151
        (1, 1, (0, 1)),  # 0.0001 of a cent is still a whole cent of margin
        (12_345, 0, (12_345, 0)),
        (12_345, 10_000, (0, 12_345)),
    ],
)
def test_percent_margin_rounds_the_margin_up(bid: int, bps: int, expected: tuple[int, int]) -> None:
    assert payout_for(bid, PercentMargin(bps=bps)) == expected


def test_percent_margin_minimum() -> None:
    rule = PercentMargin(bps=1_000, min_margin_minor=200)
    assert payout_for(1_000, rule) == (800, 200)  # 10 % = 100 < minimum 200
    assert payout_for(5_000, rule) == (4_500, 500)  # 10 % = 500 > minimum
    assert payout_for(150, rule) == (0, 150)  # the minimum exceeds the bid: capped
    assert required_margin(150, rule) == 200


@pytest.mark.parametrize(
    ("bid", "expected"),
    [
        (1, (0, 1)),
        (1_000, (900, 100)),  # bounds are inclusive
        (1_001, (800, 201)),  # 200.2 -> 201
        (5_000, (4_000, 1_000)),
        (5_001, (4_401, 600)),  # 500.1 -> 501, raised to the 600 minimum
        (10_000, (9_000, 1_000)),
    ],
)
def test_price_bands(bid: int, expected: tuple[int, int]) -> None:
    assert payout_for(bid, BANDS) == expected


@pytest.mark.parametrize(
    "bands",
    [
        (),
        (PriceBand(up_to_minor=1_000, rule=FixedMargin(amount_minor=1)),),  # not open-ended
        (
            PriceBand(up_to_minor=1_000, rule=FixedMargin(amount_minor=1)),
            PriceBand(up_to_minor=1_000, rule=FixedMargin(amount_minor=2)),
            PriceBand(up_to_minor=None, rule=FixedMargin(amount_minor=3)),
        ),
        (
            PriceBand(up_to_minor=None, rule=FixedMargin(amount_minor=1)),
            PriceBand(up_to_minor=None, rule=FixedMargin(amount_minor=2)),
        ),
    ],
)
def test_bad_bands_are_refused(bands: tuple[PriceBand, ...]) -> None:
    with pytest.raises(ValueError):
        BandedMargin(bands=bands)


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError):
        PercentMargin(bps=10_001)
    with pytest.raises(ValueError):
        FixedMargin(amount_minor=-1)
    with pytest.raises(ValueError):
        payout_for(-1, FixedMargin(amount_minor=0))


def test_rules_decode_from_json_as_a_tagged_union() -> None:
    raw = b"""{"type": "bands", "bands": [
        {"up_to_minor": 1000, "rule": {"type": "fixed", "amount_minor": 100}},
        {"up_to_minor": null, "rule": {"type": "percent", "bps": 1500}}]}"""
    rule = msgspec.json.decode(raw, type=MarginRule)
    assert payout_for(1_001, rule) == (850, 151)
    with pytest.raises(msgspec.ValidationError, match="last band must be open"):
        msgspec.json.decode(
            b'{"type": "bands", "bands": [{"up_to_minor": 1,'
            b' "rule": {"type": "fixed", "amount_minor": 1}}]}',
            type=MarginRule,
        )
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"type": "percent", "bps": 10001}', type=MarginRule)


DEFAULT = PercentMargin(bps=2_000)
BUYER = PercentMargin(bps=1_000)
SUPPLIER = FixedMargin(amount_minor=50)


def test_override_order_supplier_then_buyer_then_default() -> None:
    assert resolve_margin(DEFAULT) is DEFAULT
    assert resolve_margin(DEFAULT, buyer=BUYER) is BUYER
    assert resolve_margin(DEFAULT, supplier=SUPPLIER) is SUPPLIER
    assert resolve_margin(DEFAULT, buyer=BUYER, supplier=SUPPLIER) is SUPPLIER


def test_margin_policy_rule_for() -> None:
    policy = MarginPolicy(default=DEFAULT, by_buyer={"b1": BUYER})
    assert payout_for(1_000, policy.rule_for("b1")) == (900, 100)
    assert payout_for(1_000, policy.rule_for("b2")) == (800, 200)
    with_supplier = MarginPolicy(default=DEFAULT, by_buyer={"b1": BUYER}, supplier=SUPPLIER)
    assert payout_for(1_000, with_supplier.rule_for("b1")) == (950, 50)
    assert payout_for(1_000, with_supplier.rule_for("b2")) == (950, 50)


def test_supplier_payout_models():
    from exchange.auction import FixedPayout, RevenueShare

    assert payout_for(3000, FixedPayout(amount_minor=1500)) == (1500, 1500)
    assert payout_for(1500, FixedPayout(amount_minor=1500)) == (1500, 0)
    assert payout_for(1499, FixedPayout(amount_minor=1500)) == (0, 1499)  # cannot pay: dropped
    assert payout_for(3333, RevenueShare(bps=8000)) == (2666, 667)  # the share rounds down
    assert payout_for(1, RevenueShare(bps=10_000)) == (1, 0)


@given(bid=st.integers(0, 10**9), amount=st.integers(1, 10**9), share=st.integers(1, 10_000))
def test_payout_models_never_pay_more_than_the_bid_or_the_model(bid, amount, share):
    from exchange.auction import FixedPayout, RevenueShare

    payout, margin = payout_for(bid, FixedPayout(amount_minor=amount))
    assert payout + margin == bid and payout in (0, amount)
    payout, margin = payout_for(bid, RevenueShare(bps=share))
    assert payout + margin == bid and payout * 10_000 <= bid * share
