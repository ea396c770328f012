"""The auction core shared by ping, direct post and explain: evaluate every candidate campaign,
ping the live-bid buyers at once, rank the bids."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange import metrics, reasons
from exchange.auction import conversion, funds
from exchange.auction.context import NO_MARGIN, Context, _supplier_terms, _windows, signing_secret
from exchange.auction.margin import MarginRule, resolve_margin
from exchange.auction.market import VerticalMarket, derived
from exchange.auction.messages import (
    TraceEntry,
)
from exchange.auction.ranking import Bid, Mode, RankedAuction, rank
from exchange.matching import CampaignRules, PriceMode, evaluate
from exchange.matching.filters import with_score
from exchange.scoring.rules import LeadScore


class _Auction(msgspec.Struct, kw_only=True):
    ranked: RankedAuction
    entries: dict[str, TraceEntry]
    excluded_by_index: int
    currency: str
    score: LeadScore | None = None  # the lead's score, which campaigns' score filters saw


async def _run_auction(
    ctx: Context,
    market: VerticalMarket,
    supplier_id: uuid.UUID,
    fields: Mapping[str, Any],
    now: dt.datetime,
    *,
    max_sells: int,
    test: bool,
    ping_id: uuid.UUID,
    conn: AsyncConnection | None = None,
    score: LeadScore | None = None,
    calls: bool = False,
) -> _Auction:
    """``conn``: read in the caller's transaction (one that pings nobody), not a new one.
    ``score``: the lead's (None: its vertical scores nothing), for campaigns' score filters;
    buyers are pinged with the lead's fields only. ``calls``: a call's auction, among the
    campaigns that buy calls (exchange.calls) instead of those that buy leads."""
    match = fields if score is None else with_score(fields, score.score, score.priority)
    index = market.call_index if calls else market.index
    candidates = index.candidates(market.slug, match) if index is not None else []
    wanted = [w for c in candidates for w in _windows(c, now)]
    buyer_ids = {c.buyer_id for c in candidates}
    if conn is not None:
        usage = await cap_store.read_usage(conn, wanted)
        states = await funds.buyer_states(conn, buyer_ids)
    else:
        async with ctx.db.read() as read:
            usage = await cap_store.read_usage(read, wanted)
            states = await funds.buyer_states(read, buyer_ids)
    terms = await _supplier_terms(ctx, supplier_id)

    entries: dict[str, TraceEntry] = {}
    eligible: list[CampaignRules] = []
    for campaign in candidates:
        state = states.get(campaign.buyer_id, funds.BuyerState(0, None))
        decision = evaluate(
            campaign,
            match,
            now,
            usage.get(campaign.campaign_id, {}),
            buyer_can_pay=state.spendable_minor >= _least_price(campaign),
            already_bought=False,
        )
        entries[campaign.campaign_id] = TraceEntry(
            campaign_id=campaign.campaign_id,
            buyer_id=campaign.buyer_id,
            reason=decision.reason,
            details=dict(decision.details),
        )
        if decision.eligible:
            eligible.append(campaign)

    answers = await _collect_bids(ctx, market, eligible, fields, ping_id=ping_id, test=test)
    weights = await _conversion_weights(ctx, market, eligible, score)
    bids: list[Bid] = []
    bid_count = 0
    for campaign in eligible:
        entry = entries[campaign.campaign_id]
        answer = answers.get(campaign.campaign_id)
        if answer is not None:
            entry.latency_ms = answer.latency_ms
            if answer.reason is not None:
                entry.reason = answer.reason
                if answer.detail:
                    entry.details["answer"] = answer.detail
                continue
            amount = answer.price_minor
        else:
            amount = campaign.fixed_price_minor or 0
        entry.bid_minor = amount
        bid_count += 1
        state = states.get(campaign.buyer_id, funds.BuyerState(0, None))
        if amount > state.spendable_minor:
            entry.reason = reasons.INSUFFICIENT_BALANCE
            entry.details["price_minor"] = amount
            continue
        if 1 < campaign.max_sells < max_sells:
            # It buys leads shared with at most N buyers; this one may go to more. (Exclusive-
            # only campaigns are the ranking's to drop, with the same reason.)
            entry.reason = reasons.EXCLUSIVITY_CONFLICT
            entry.details.update(campaign_max_sells=campaign.max_sells, lead_max_sells=max_sells)
            continue
        buyer = market.buyers.get(campaign.buyer_id)
        weight = weights.get(campaign.campaign_id)
        if weight is not None:
            entry.details["conversion"] = weight.note()
            entry.details["weight_bps"] = weight.weight_bps
        bids.append(
            Bid(
                campaign_id=campaign.campaign_id,
                buyer_id=campaign.buyer_id,
                amount_minor=amount,
                tier=campaign.tier,
                floor_minor=campaign.floor_minor,
                last_won_at=state.last_won_at,
                penalty_bps=buyer.penalty_bps if buyer else 0,
                exclusive=campaign.max_sells == 1,
                weight_bps=weight.weight_bps if weight else conversion.NEUTRAL_WEIGHT_BPS,
            )
        )

    if bid_count and ctx.http is not None:  # a dry run (explain) is not an auction
        metrics.BIDS.labels(market.slug).inc(bid_count)
    mode = terms.auction_mode or Mode(market.auction_mode)
    vertical_margin = msgspec.convert(market.margin, MarginRule) if market.margin else NO_MARGIN

    margins: dict[str, MarginRule] = {}  # per buyer: a buyer bids with many campaigns

    def margin_for(buyer_id: str) -> MarginRule:
        rule = margins.get(buyer_id)
        if rule is None:
            buyer = market.buyers.get(buyer_id)
            buyer_margin = msgspec.convert(buyer.margin, MarginRule) if buyer and buyer.margin else None
            rule = margins[buyer_id] = resolve_margin(vertical_margin, buyer=buyer_margin, supplier=terms.margin)
        return rule

    ranked = rank(bids, mode, terms.min_payout_minor, margin_for, max_sells=max_sells)
    for dropped in ranked.dropped:
        entry = entries[dropped.campaign_id]
        entry.reason = dropped.reason.value
        entry.payout_minor = dropped.payout_minor
    for candidate in ranked.candidates():
        entries[candidate.campaign_id].payout_minor = candidate.payout_minor
    return _Auction(
        ranked=ranked,
        entries=entries,
        excluded_by_index=(len(market.calls) if calls else len(market.rules) - len(market.calls)) - len(candidates),
        currency=market.currency,
        score=score,
    )


async def _conversion_weights(
    ctx: Context, market: VerticalMarket, eligible: list[CampaignRules], score: LeadScore | None
) -> dict[str, conversion.Weight]:
    """The conversion weight of each eligible campaign ranked by conversion, from the cached
    counts (no round trip per lead). None of them bidding: no work at all."""
    if not market.by_conversion or not any(c.campaign_id in market.by_conversion for c in eligible):
        return {}
    counts = await ctx.market.campaign_history.counts(market.vertical_id, market.by_conversion)
    segment = conversion.segment_for(score.priority if score else None)
    found = conversion.weights(counts, market.by_conversion, segment, floors=market.conversion_floors)
    return {c.campaign_id: found[c.campaign_id] for c in eligible if c.campaign_id in found}


def _least_price(campaign: CampaignRules) -> int:
    if campaign.price_mode is PriceMode.FIXED:
        return campaign.fixed_price_minor or 0
    return campaign.floor_minor


class _Answer(msgspec.Struct, kw_only=True):
    reason: str | None
    price_minor: int
    latency_ms: int
    detail: str | None = None


async def _collect_bids(
    ctx: Context,
    market: VerticalMarket,
    eligible: list[CampaignRules],
    fields: Mapping[str, Any],
    *,
    ping_id: uuid.UUID,
    test: bool,
) -> dict[str, _Answer]:
    """Ping every eligible live-bid campaign at once; fixed-price ones bid without a call."""
    from exchange import delivery

    live = [c for c in eligible if c.price_mode is PriceMode.LIVE]
    if not live:
        return {}
    if ctx.http is None:  # a dry run never calls buyers
        return {
            c.campaign_id: _Answer(reason=reasons.PING_REJECTED, price_minor=0, latency_ms=0, detail="dry run: not pinged")
            for c in live
        }
    now_s = int(dt.datetime.now(dt.timezone.utc).timestamp())
    payload = delivery.LeadPayload(
        ping_id=str(ping_id), vertical=market.slug, fields=dict(fields), test=test
    )
    calls = []
    configs = {}
    buyers = {c.campaign_id: c.buyer_id for c in live}
    answers: dict[str, _Answer] = {}
    for campaign in live:
        endpoints = _endpoints(market, campaign.campaign_id)
        if endpoints is None or endpoints.ping is None:
            answers[campaign.campaign_id] = _Answer(
                reason=reasons.PING_ERROR, price_minor=0, latency_ms=0, detail="no ping endpoint"
            )
            metrics.ping_answered(campaign.buyer_id, "error", None)
            continue
        try:
            request = delivery.build_request(
                endpoints.ping,
                "ping",
                payload,
                secret=signing_secret(ctx.settings, campaign.buyer_id),
                now_s=now_s,
                delivery_id=f"{ping_id}:{campaign.campaign_id}",
            )
        except delivery.MappingError as exc:
            answers[campaign.campaign_id] = _Answer(
                reason=reasons.PING_ERROR, price_minor=0, latency_ms=0, detail=str(exc)[:200]
            )
            metrics.ping_answered(campaign.buyer_id, "error", None)
            continue
        configs[campaign.campaign_id] = endpoints.ping
        calls.append((campaign.campaign_id, request, endpoints.ping.timeout_for("ping")))
    exchanges = await delivery.ping_all(ctx.http, calls, ctx.settings.auction_deadline_ms)
    for campaign_id, exchange in exchanges.items():
        verdict = delivery.classify_ping(configs[campaign_id], exchange)
        reason, price = verdict.reason, verdict.price_minor
        if reason is None and price is None:
            # A live bid must carry its price; a "yes" without one is unreadable, not a bid.
            reason = reasons.PING_ERROR
        metrics.ping_answered(buyers[campaign_id], _PING_OUTCOMES[reason], verdict.latency_ms)
        answers[campaign_id] = _Answer(
            reason=reason,
            price_minor=price or 0,
            latency_ms=verdict.latency_ms,
            detail=verdict.detail or None,
        )
    return answers


_PING_OUTCOMES = {
    None: "bid",
    reasons.PING_REJECTED: "rejected",
    reasons.PING_ERROR: "error",
    reasons.PING_TIMEOUT: "timeout",
}


def _endpoints(market: VerticalMarket, campaign_id: str) -> Any:
    """The campaign's BuyerEndpoints: converting (and checking) them cost more than the rest of
    its auction, so each is converted once per market snapshot."""
    from exchange import delivery

    by_campaign: dict[str, Any] = derived(market, "endpoints", lambda _: {})
    if campaign_id not in by_campaign:
        raw = market.endpoints.get(campaign_id)
        by_campaign[campaign_id] = msgspec.convert(raw, delivery.BuyerEndpoints) if raw else None
    return by_campaign[campaign_id]
