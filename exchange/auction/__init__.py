"""The auction decision layer: margins, ranking, the no-loss post walk and the ping offer.

Pure functions over plain values: no database, no HTTP, no clock (time is a parameter).
Money is integer minor units; percentages are integer basis points.
"""

from exchange.auction.fallback import (
    Attempt,
    CampaignResult,
    Done,
    PostAction,
    PostOutcome,
    Sale,
    WalkState,
    next_post,
    record,
    start_walk,
)
from exchange.auction.margin import (
    BPS_PER_WHOLE,
    BandedMargin,
    FixedMargin,
    FixedPayout,
    MarginPolicy,
    MarginRule,
    PercentMargin,
    PriceBand,
    RevenueShare,
    payout_for,
    required_margin,
    resolve_margin,
)
from exchange.auction.offer import DEFAULT_OFFER_TTL, OfferedBid, PingOffer, build_offer
from exchange.auction.ranking import (
    EXCLUSIVE,
    MIN_BID_MINOR,
    MIN_PAYOUT_MINOR,
    TOP_TIER,
    Bid,
    Candidate,
    Dropped,
    Mode,
    RankedAuction,
    adjusted,
    rank,
)
from exchange.auction.reasons import AuctionReason

__all__ = [
    "BPS_PER_WHOLE",
    "DEFAULT_OFFER_TTL",
    "EXCLUSIVE",
    "MIN_BID_MINOR",
    "MIN_PAYOUT_MINOR",
    "TOP_TIER",
    "Attempt",
    "AuctionReason",
    "BandedMargin",
    "Bid",
    "CampaignResult",
    "Candidate",
    "Done",
    "Dropped",
    "FixedMargin",
    "FixedPayout",
    "MarginPolicy",
    "MarginRule",
    "Mode",
    "OfferedBid",
    "PercentMargin",
    "PingOffer",
    "PostAction",
    "PostOutcome",
    "PriceBand",
    "RankedAuction",
    "RevenueShare",
    "Sale",
    "WalkState",
    "adjusted",
    "build_offer",
    "next_post",
    "payout_for",
    "rank",
    "record",
    "required_margin",
    "resolve_margin",
    "start_walk",
]
