"""Rank the bids of one lead: drop what cannot sell, order the rest for the post walk.

First price: a winner pays its own bid (`Bid.amount_minor`). The bid penalty, a team
campaign's conversion weight (`Bid.weight_bps`, exchange.auction.conversion) and the tiers decide
only the *order*; the price paid and the supplier's payout come from the raw bid.

The result is a list of candidate groups walked in order by `fallback`:
- FREE_PICK: one group, every eligible bid, highest adjusted bid first;
- TIERS: one group per tier, tier 1 first. A lower group is tried only when no higher one sold.
Within a group the order is: adjusted bid (high first), then least recently won (never won
first), then campaign_id, so the order never depends on the order bids arrived in.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable
from typing import Annotated

import msgspec

from exchange.auction.margin import BPS_PER_WHOLE, BasisPoints, MarginRule, MinorUnits, payout_for
from exchange.auction.reasons import AuctionReason

TOP_TIER = 1  # tiers count down in priority from 1
MIN_BID_MINOR = 1  # a bid of 0 is no bid, whatever the campaign floor says
MIN_PAYOUT_MINOR = 1  # a lead that pays the supplier nothing is not a sale
EXCLUSIVE = 1  # max_sells for an exclusive lead
NEUTRAL_WEIGHT_BPS = BPS_PER_WHOLE  # x1: the ranking value is the (penalised) bid
# A conversion weight moves a bid's ranking value at most tenfold either way.
MIN_WEIGHT_BPS = BPS_PER_WHOLE // 10
MAX_WEIGHT_BPS = BPS_PER_WHOLE * 10


class Mode(str, enum.Enum):
    FREE_PICK = "free_pick"
    TIERS = "tiers"


class Bid(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One campaign's bid on one lead, after fan-out (fixed-price campaigns bid their price)."""

    campaign_id: str
    buyer_id: str
    amount_minor: MinorUnits  # what the buyer pays if it wins (first price)
    tier: Annotated[int, msgspec.Meta(ge=TOP_TIER)] = TOP_TIER
    floor_minor: MinorUnits = 0  # the campaign's own minimum price
    last_won_at: dt.datetime | None = None  # timezone-aware; None = never won
    penalty_bps: BasisPoints = 0  # lowers the ranking of buyers who often reject posts
    exclusive: bool = False  # this campaign buys exclusive leads only
    # Multiplies the ranking value (never the price): a team campaign's measured conversion in
    # the lead's segment relative to its peers'. NEUTRAL_WEIGHT_BPS for every other bid.
    weight_bps: Annotated[
        int, msgspec.Meta(ge=MIN_WEIGHT_BPS, le=MAX_WEIGHT_BPS)
    ] = NEUTRAL_WEIGHT_BPS

    def __post_init__(self) -> None:
        # Meta constraints bind only when decoding; bids built in code are checked here too.
        if min(self.amount_minor, self.floor_minor) < 0:
            raise ValueError("amounts must be >= 0")
        if self.tier < TOP_TIER:
            raise ValueError(f"tier must be >= {TOP_TIER}")
        if not 0 <= self.penalty_bps <= BPS_PER_WHOLE:
            raise ValueError(f"penalty_bps must be within 0..{BPS_PER_WHOLE}")
        if not MIN_WEIGHT_BPS <= self.weight_bps <= MAX_WEIGHT_BPS:
            raise ValueError(f"weight_bps must be within {MIN_WEIGHT_BPS}..{MAX_WEIGHT_BPS}")


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An eligible bid with its money already worked out."""

    bid: Bid
    adjusted_minor: int  # ranking value only (see `adjusted`)
    payout_minor: int  # what the supplier gets if this bid sells: bid - margin
    margin_minor: int

    @property
    def campaign_id(self) -> str:
        return self.bid.campaign_id

    @property
    def buyer_id(self) -> str:
        return self.bid.buyer_id


class Dropped(msgspec.Struct, frozen=True, kw_only=True):
    """A bid that takes no part in the post walk, with its reason and the numbers behind it."""

    campaign_id: str
    buyer_id: str
    reason: AuctionReason
    amount_minor: int
    payout_minor: int


class RankedAuction(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode
    max_sells: int  # 1 = exclusive; N = shared, at most N distinct buyers
    groups: tuple[tuple[Candidate, ...], ...]  # walk order; empty groups are left out
    dropped: tuple[Dropped, ...]  # sorted by campaign_id

    def candidates(self) -> tuple[Candidate, ...]:
        """Every candidate in walk order."""
        return tuple(c for group in self.groups for c in group)


def _exact(bid: Bid) -> int:
    # The ranking value scaled by BPS_PER_WHOLE**2: integers only, so no rounding at a tie.
    return bid.amount_minor * (BPS_PER_WHOLE - bid.penalty_bps) * bid.weight_bps


def adjusted(bid: Bid) -> int:
    """The ranking value: the bid less its penalty, times its conversion weight, rounded down.
    Never a price (a weight above neutral may put it above the bid)."""
    return _exact(bid) // (BPS_PER_WHOLE * BPS_PER_WHOLE)


def _order_key(c: Candidate) -> tuple[int, tuple[int, dt.datetime | None], str]:
    # The unrounded adjusted value so that rounding never manufactures a tie; `adjusted` rounds
    # down, which is monotone, so both agree on the order.
    exact = _exact(c.bid)
    won = (0, None) if c.bid.last_won_at is None else (1, c.bid.last_won_at)
    return (-exact, won, c.bid.campaign_id)


def _drop(bid: Bid, reason: AuctionReason, payout_minor: int = 0) -> Dropped:
    return Dropped(
        campaign_id=bid.campaign_id,
        buyer_id=bid.buyer_id,
        reason=reason,
        amount_minor=bid.amount_minor,
        payout_minor=payout_minor,
    )


def rank(
    bids: Iterable[Bid],
    mode: Mode,
    supplier_min_payout_minor: int,
    margin_resolver: Callable[[str], MarginRule],
    *,
    max_sells: int = EXCLUSIVE,
) -> RankedAuction:
    """Rank one lead's bids. `margin_resolver` maps a buyer_id to its margin rule.

    Dropped, one reason each, checked in this order:
    - `exclusivity_conflict`: an exclusive-only bid on a shared lead (max_sells > 1);
    - `below_floor`: bid under max(campaign floor, MIN_BID_MINOR), or payout after margin under
      max(supplier minimum, MIN_PAYOUT_MINOR);
    - `not_better_than_winner` (shared leads only): a second campaign of a buyer already in the
      walk; the buyer keeps only its campaign that comes first in walk order.
    """
    if max_sells < EXCLUSIVE:
        raise ValueError("max_sells must be >= 1")
    bids = list(bids)
    if len({b.campaign_id for b in bids}) != len(bids):
        raise ValueError("a campaign bids at most once per lead")
    min_payout = max(supplier_min_payout_minor, MIN_PAYOUT_MINOR)
    shared = max_sells > EXCLUSIVE

    dropped: list[Dropped] = []
    eligible: list[Candidate] = []
    for bid in bids:
        if shared and bid.exclusive:
            dropped.append(_drop(bid, AuctionReason.EXCLUSIVITY_CONFLICT))
            continue
        payout, margin = payout_for(bid.amount_minor, margin_resolver(bid.buyer_id))
        if bid.amount_minor < max(bid.floor_minor, MIN_BID_MINOR) or payout < min_payout:
            dropped.append(_drop(bid, AuctionReason.BELOW_FLOOR, payout))
            continue
        candidate = Candidate(
            bid=bid, adjusted_minor=adjusted(bid), payout_minor=payout, margin_minor=margin
        )
        eligible.append(candidate)

    if mode is Mode.TIERS:
        tiers = sorted({c.bid.tier for c in eligible})
        groups = [sorted((c for c in eligible if c.bid.tier == t), key=_order_key) for t in tiers]
    else:
        groups = [sorted(eligible, key=_order_key)] if eligible else []

    if shared:
        groups = _one_campaign_per_buyer(groups, dropped)

    return RankedAuction(
        mode=mode,
        max_sells=max_sells,
        groups=tuple(tuple(g) for g in groups if g),
        dropped=tuple(sorted(dropped, key=lambda d: d.campaign_id)),
    )


def _one_campaign_per_buyer(
    groups: list[list[Candidate]], dropped: list[Dropped]
) -> list[list[Candidate]]:
    # A shared lead sells to distinct buyers; keeping one campaign per buyer here means the
    # ping offer can list the top N and they are N different buyers.
    seen: set[str] = set()
    kept: list[list[Candidate]] = []
    for group in groups:
        kept.append([])
        for c in group:
            if c.buyer_id in seen:
                dropped.append(_drop(c.bid, AuctionReason.NOT_BETTER_THAN_WINNER, c.payout_minor))
            else:
                seen.add(c.buyer_id)
                kept[-1].append(c)
    return kept
