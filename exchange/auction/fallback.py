"""The no-loss post walk, as a pure step function the async post code drives.

    state = start_walk(ranked, offer.promises())
    while isinstance(action := next_post(state), PostAction):
        outcome = await post_to(action.candidate)        # the caller's I/O
        state = record(state, action.candidate.campaign_id, outcome)
    done = action                                       # sales + one reason per candidate

Rules:
- Candidates are tried in ranked order, each at most once (a rejection is never retried).
- Each promise is one sale whose payout the supplier was quoted at ping time. A candidate is
  posted to only if its own payout (bid - margin) covers an open promise: the exchange never
  pays a supplier more than the sale leaves after margin (no loss). An accepted post fills the
  largest open promise it covers, keeping smaller ones for weaker bids further down.
- The supplier is paid what it was promised; if a fallback bid pays more, the surplus is margin.
- A buyer buys a lead once, even through another campaign.
- Groups (tiers) are walked in order, and once a group has sold no lower group is tried.
- ERROR means the caller's delivery layer gave up on that buyer (retries spent); the walk moves on.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import msgspec

from exchange.auction.ranking import Candidate, RankedAuction
from exchange.auction.reasons import AuctionReason


class PostOutcome(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"


_REASON_FOR = {
    PostOutcome.ACCEPTED: AuctionReason.SOLD,
    PostOutcome.REJECTED: AuctionReason.POST_REJECTED,
    PostOutcome.ERROR: AuctionReason.POST_ERROR,
}


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    outcome: PostOutcome
    promised_payout_minor: int  # the promise this post was meant to fill


class WalkState(msgspec.Struct, frozen=True, kw_only=True):
    """Plain data (msgspec-encodable), so the caller may persist it between posts."""

    groups: tuple[tuple[Candidate, ...], ...]
    open_promises_minor: tuple[int, ...]  # promises not yet filled, largest first
    attempts: tuple[Attempt, ...] = ()


class PostAction(msgspec.Struct, frozen=True, kw_only=True):
    """Post the lead to this candidate next."""

    candidate: Candidate
    promised_payout_minor: int  # the promise it fills if accepted; <= candidate.payout_minor


class Sale(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    buyer_id: str
    price_minor: int  # the buyer pays its own bid
    payout_minor: int  # the supplier gets what it was promised
    margin_minor: int  # price - payout, never negative


class CampaignResult(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    buyer_id: str
    reason: AuctionReason


class Done(msgspec.Struct, frozen=True, kw_only=True):
    sales: tuple[Sale, ...]  # in the order they happened
    results: tuple[CampaignResult, ...]  # every candidate once, in walk order
    unfilled_promises_minor: tuple[int, ...]  # nothing sold for these: internal teams next


def start_walk(ranked: RankedAuction, promised_payouts_minor: Sequence[int]) -> WalkState:
    """Begin the walk. One promise per sale the supplier was quoted (exclusive: exactly one)."""
    if not promised_payouts_minor:
        raise ValueError("at least one promised payout is needed")
    if len(promised_payouts_minor) > ranked.max_sells:
        raise ValueError("more promises than the lead may be sold")
    if any(p < 0 for p in promised_payouts_minor):
        raise ValueError("promised payouts must be >= 0")
    promises = tuple(sorted(promised_payouts_minor, reverse=True))
    return WalkState(groups=ranked.groups, open_promises_minor=promises)


def _largest_covered(open_promises: tuple[int, ...], payout_minor: int) -> int | None:
    # open_promises is sorted largest first
    return next((p for p in open_promises if p <= payout_minor), None)


def next_post(state: WalkState) -> PostAction | Done:
    """The next candidate to post to, or Done. Pure: calling it twice gives the same answer."""
    if not state.open_promises_minor:
        return _done(state)
    tried = {a.campaign_id for a in state.attempts}
    sold = {a.campaign_id for a in state.attempts if a.outcome is PostOutcome.ACCEPTED}
    sold_buyers: set[str] = set()
    for group in state.groups:
        if sold_buyers:  # a higher group sold: lower groups are not tried
            break
        sold_buyers = {c.buyer_id for c in group if c.campaign_id in sold}
        for c in group:
            if c.campaign_id in tried or c.buyer_id in sold_buyers:
                continue
            promise = _largest_covered(state.open_promises_minor, c.payout_minor)
            if promise is not None:
                return PostAction(candidate=c, promised_payout_minor=promise)
    return _done(state)


def record(state: WalkState, campaign_id: str, outcome: PostOutcome) -> WalkState:
    """Record the outcome of the post `next_post` asked for; any other campaign is a caller bug."""
    action = next_post(state)
    if not isinstance(action, PostAction) or action.candidate.campaign_id != campaign_id:
        raise ValueError(f"campaign {campaign_id!r} is not the next post of this walk")
    promises = list(state.open_promises_minor)
    if outcome is PostOutcome.ACCEPTED:
        promises.remove(action.promised_payout_minor)
    attempt = Attempt(
        campaign_id=campaign_id, outcome=outcome, promised_payout_minor=action.promised_payout_minor
    )
    return msgspec.structs.replace(
        state, open_promises_minor=tuple(promises), attempts=(*state.attempts, attempt)
    )


def end(state: WalkState) -> Done:
    """End the walk where it stands (its time ran out): what sold stands, the promises not
    filled stay unfilled, and the candidates never posted to are ``not_better_than_winner``."""
    return _done(state)


def _done(state: WalkState) -> Done:
    by_id = {c.campaign_id: c for group in state.groups for c in group}
    attempts = {a.campaign_id: a for a in state.attempts}
    sales = tuple(
        Sale(
            campaign_id=a.campaign_id,
            buyer_id=by_id[a.campaign_id].buyer_id,
            price_minor=by_id[a.campaign_id].bid.amount_minor,
            payout_minor=a.promised_payout_minor,
            margin_minor=by_id[a.campaign_id].bid.amount_minor - a.promised_payout_minor,
        )
        for a in state.attempts
        if a.outcome is PostOutcome.ACCEPTED
    )
    results = tuple(
        CampaignResult(
            campaign_id=c.campaign_id,
            buyer_id=c.buyer_id,
            reason=_REASON_FOR[attempts[c.campaign_id].outcome]
            if c.campaign_id in attempts
            else AuctionReason.NOT_BETTER_THAN_WINNER,
        )
        for group in state.groups
        for c in group
    )
    return Done(sales=sales, results=results, unfilled_promises_minor=state.open_promises_minor)
