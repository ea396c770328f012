"""The exchange's margin: how a buyer's bid is split between the supplier and the exchange.

Money is integer minor units (cents); percentages are integer basis points (1 bps = 0.01 %).
The buyer always pays its own bid (first price). The margin only splits that bid, so for every
rule and every bid: payout + margin == bid and 0 <= payout <= bid.

Rounding: a percentage margin is rounded *up* to the next minor unit (ceiling division), so the
supplier's payout is rounded down. The exchange never collects less than its configured share,
and no fraction of a cent is ever paid out that the buyer did not pay. Integer arithmetic only.

Which rule applies (see `resolve_margin`): per-supplier override > per-buyer override >
exchange default.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

BPS_PER_WHOLE = 10_000  # 100 % in basis points

MinorUnits = Annotated[int, msgspec.Meta(ge=0, description="integer minor units (cents)")]
BasisPoints = Annotated[int, msgspec.Meta(ge=0, le=BPS_PER_WHOLE, description="1 bps = 0.01 %")]


class _Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Common options of the margin rule structs."""


def _require(ok: bool, message: str) -> None:
    # msgspec only checks Meta constraints when decoding; __post_init__ also guards structs
    # built in code (and msgspec turns the ValueError into a ValidationError on decode).
    if not ok:
        raise ValueError(message)


class FixedMargin(_Rule, tag="fixed"):
    """The exchange keeps a fixed amount of every bid (all of it, if the bid is smaller)."""

    amount_minor: MinorUnits

    def __post_init__(self) -> None:
        _require(self.amount_minor >= 0, "amount_minor must be >= 0")


class PercentMargin(_Rule, tag="percent"):
    """The exchange keeps a share of every bid, rounded up, and at least `min_margin_minor`."""

    bps: BasisPoints
    min_margin_minor: MinorUnits = 0

    def __post_init__(self) -> None:
        _require(0 <= self.bps <= BPS_PER_WHOLE, f"bps must be within 0..{BPS_PER_WHOLE}")
        _require(self.min_margin_minor >= 0, "min_margin_minor must be >= 0")


FlatMargin = FixedMargin | PercentMargin


class PriceBand(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Bids up to `up_to_minor` (inclusive) use `rule`; None means "and everything above"."""

    up_to_minor: MinorUnits | None
    rule: FlatMargin


class BandedMargin(_Rule, tag="bands"):
    """A price-band matrix: the first band whose bound covers the bid decides.

    Bounds must increase strictly and the last band must be open (None), so every bid has
    exactly one band and there is no silent "no margin" gap above the top bound.
    """

    bands: Annotated[tuple[PriceBand, ...], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        _require(len(self.bands) >= 1, "bands must not be empty")
        last_open = self.bands[-1].up_to_minor is None
        _require(last_open, "the last band must be open (up_to_minor = null)")
        bounds = [band.up_to_minor for band in self.bands[:-1]]
        _require(None not in bounds, "only the last band may be open")
        increasing = all(a < b for a, b in zip(bounds, bounds[1:]))
        _require(increasing, "band bounds must increase strictly")


class FixedPayout(_Rule, tag="fixed_payout"):
    """A supplier payout model: the supplier earns exactly this per lead and the exchange keeps
    the rest of the bid. A bid below it cannot pay the supplier: it is dropped (payout 0)."""

    amount_minor: MinorUnits

    def __post_init__(self) -> None:
        _require(self.amount_minor >= 1, "amount_minor must be >= 1")


class RevenueShare(_Rule, tag="revenue_share"):
    """A supplier payout model: the supplier earns this share of the price (rounded down, so
    the exchange never pays out more than the share), the exchange keeps the rest."""

    bps: BasisPoints

    def __post_init__(self) -> None:
        _require(0 < self.bps <= BPS_PER_WHOLE, f"bps must be within 1..{BPS_PER_WHOLE}")


MarginRule = FixedMargin | PercentMargin | BandedMargin | FixedPayout | RevenueShare


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def required_margin(bid_minor: int, rule: MarginRule) -> int:
    """The margin the rule asks for on this bid; may exceed the bid (see `payout_for`)."""
    if isinstance(rule, FixedMargin):
        return rule.amount_minor
    if isinstance(rule, PercentMargin):
        return max(_ceil_div(bid_minor * rule.bps, BPS_PER_WHOLE), rule.min_margin_minor)
    if isinstance(rule, FixedPayout):
        return bid_minor - rule.amount_minor if bid_minor >= rule.amount_minor else bid_minor
    if isinstance(rule, RevenueShare):
        return bid_minor - (bid_minor * rule.bps) // BPS_PER_WHOLE
    for band in rule.bands:
        if band.up_to_minor is None or bid_minor <= band.up_to_minor:
            return required_margin(bid_minor, band.rule)
    raise AssertionError("unreachable: the last band is open")  # pragma: no cover


def payout_for(bid_minor: int, rule: MarginRule) -> tuple[int, int]:
    """(payout_minor, margin_minor) for a bid: payout + margin == bid, 0 <= payout <= bid.

    A margin larger than the bid is capped at the bid (payout 0). The ranking drops such bids
    as `below_floor`, because a lead that pays the supplier nothing is not a sale.
    """
    if bid_minor < 0:
        raise ValueError("bid_minor must be >= 0")
    margin = min(required_margin(bid_minor, rule), bid_minor)
    return bid_minor - margin, margin


def resolve_margin(
    default: MarginRule,
    *,
    buyer: MarginRule | None = None,
    supplier: MarginRule | None = None,
) -> MarginRule:
    """Pick the rule: supplier override > buyer override > exchange default.

    Why the supplier wins over the buyer: under first price the buyer pays its bid whatever
    the margin is, so the margin only decides what the *supplier* receives. A supplier
    override is a payout term in the supplier's contract and must hold whichever buyer wins;
    a buyer override is the exchange's own concession and may not change someone else's deal.
    """
    if supplier is not None:
        return supplier
    if buyer is not None:
        return buyer
    return default


class MarginPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The margin rules in force for one lead: the lead's supplier is already known."""

    default: MarginRule
    by_buyer: dict[str, MarginRule] = {}
    supplier: MarginRule | None = None  # the override for this lead's supplier, if any

    def rule_for(self, buyer_id: str) -> MarginRule:
        """Usable as `rank(..., margin_resolver=policy.rule_for)`."""
        buyer = self.by_buyer.get(buyer_id)
        return resolve_margin(self.default, buyer=buyer, supplier=self.supplier)
