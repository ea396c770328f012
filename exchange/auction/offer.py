"""The ping result: what the supplier is offered for a lead, built from a ranked auction.

The offer comes from the first group only (FREE_PICK: all bids; TIERS: the highest tier with
an eligible bid), because a lower tier may sell only when the higher one does not: quoting a
lower tier's price up front would promise a sale the walk may never be allowed to make.
- exclusive: the top candidate; payout_minor is its payout.
- shared: the top max_sells candidates (distinct buyers, see `rank`); payout_minor is their
  sum, the most the supplier can earn if every offered buyer accepts the post.
Each offered payout becomes one promise of the no-loss walk (`PingOffer.promises`).
"""

from __future__ import annotations

import datetime as dt

import msgspec

from exchange.auction.ranking import RankedAuction

DEFAULT_OFFER_TTL = dt.timedelta(seconds=120)  # how long the supplier has to post


class OfferedBid(msgspec.Struct, frozen=True, kw_only=True):
    # campaign_id and buyer_id are internal: the API shows an opaque bid id (and, for 1:1
    # consent verticals, the buyer's display name), never these.
    campaign_id: str
    buyer_id: str
    payout_minor: int


class PingOffer(msgspec.Struct, frozen=True, kw_only=True):
    payout_minor: int  # net of margin: exclusive = the one bid, shared = sum over `bids`
    expires_at: dt.datetime
    bids: tuple[OfferedBid, ...]  # best first; one entry for an exclusive lead

    def promises(self) -> list[int]:
        """The promised payouts to start the post walk with, if the supplier takes every bid."""
        return [b.payout_minor for b in self.bids]


def build_offer(
    ranked: RankedAuction, now: dt.datetime, ttl: dt.timedelta = DEFAULT_OFFER_TTL
) -> PingOffer | None:
    """The offer for this auction, or None when no bid is eligible. `now` must be timezone-aware."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if ttl <= dt.timedelta(0):
        raise ValueError("ttl must be positive")
    if not ranked.groups:
        return None
    top = ranked.groups[0][: ranked.max_sells]
    bids = tuple(
        OfferedBid(campaign_id=c.campaign_id, buyer_id=c.buyer_id, payout_minor=c.payout_minor)
        for c in top
    )
    total = sum(b.payout_minor for b in bids)
    return PingOffer(payout_minor=total, expires_at=now + ttl, bids=bids)
