"""Direct post (ping and post in one call), the dry-run explain, and reading traces."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction import posting
from exchange.auction.bidding import _run_auction
from exchange.auction.context import (
    PING_POSTING,
    Context,
    _conflict,
    _now,
    _rate_limit,
    _vertical_and_market,
)
from exchange.auction.market import VerticalMarket, derived
from exchange.auction.messages import (
    PingIn,
    Trace,
    TraceEntry,
)
from exchange.auction.offer import build_offer
from exchange.auction.pinging import _hold_and_write_ping, _ping_out
from exchange.auction.posting import _replay_post
from exchange.auth.parties import Principal
from exchange.errors import validation_error
from exchange.ids import new_id
from exchange.intake import service as intake
from exchange.intake.messages import LeadIn
from exchange.intake.validate import Stage, validate_lead
from exchange.matching.eligibility import PriceMode
from exchange.scoring.rules import LeadScore
from exchange.scoring.store import score_lead
from exchange.store.tables import (
    traces,
)


async def direct_post(
    ctx: Context, supplier: Principal, lead_in: LeadIn, *, body: bytes, idempotency_key: str | None
) -> intake.Accepted:
    """Ping and post in one call: the same auction, run by the exchange on the supplier's behalf.

    After the auction, one write transaction holds capacity for the offer, writes the ping
    (already ``posting``), its holds and trace, takes the idempotency key and the lead's
    duplicate keys and stores the lead and its PII: a duplicate or a twin request rolls all of
    it back. The walk (sale, delivery, ledger) follows as for any post."""
    await _rate_limit(ctx, supplier.party_id)
    if idempotency_key is not None:
        intake.check_idempotency_key(idempotency_key, ctx.settings)
        async with ctx.db.read() as conn:
            replay = await _replay_post(conn, supplier.party_id, idempotency_key, body, supplier_key=True)
        if replay is not None:
            return replay
    vertical, market = await _vertical_and_market(ctx, lead_in.vertical)
    result = validate_lead(vertical.fields, lead_in, Stage.POST, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    if _pings_buyers(market):
        # A duplicate is refused before any buyer is pinged (pinging shows the lead's fields).
        # With fixed-price campaigns only nobody is pinged: the claim below refuses it, atomically.
        async with ctx.db.read() as conn:
            duplicate = await intake.find_duplicate(conn, ctx.settings, vertical, result, _now(), test=lead_in.test)
        if duplicate is not None:
            raise intake.duplicate_error(vertical, duplicate)
    scored = await score_lead(market.scoring, ctx.market.history, market.vertical_id, result.fields, lead_in.source)
    now = _now()
    ping_id = new_id()
    # An auction that pings buyers runs outside any transaction (they take hundreds of ms); one
    # that pings nobody reads cap usage and money in the write transaction below, on
    # PostgreSQL (on SQLite that would hold the one write lock through the auction).
    auction = None
    if _pings_buyers(market) or ctx.db.is_sqlite:
        auction = await _run_auction(
            ctx, market, supplier.party_id, result.fields, now, max_sells=1, test=lead_in.test, ping_id=ping_id,
            score=scored,
        )  # fmt: skip
    meta = {"source": lead_in.source, "sub_ids": msgspec.to_builtins(lead_in.sub_ids) if lead_in.sub_ids else None}
    lead_id = new_id()
    key = idempotency_key or f"direct:{ping_id}"
    try:
        async with ctx.db.write() as conn:
            if auction is None:
                auction = await _run_auction(ctx, market, supplier.party_id, result.fields, now, max_sells=1,
                                             test=lead_in.test, ping_id=ping_id, conn=conn, score=scored)  # fmt: skip
            held = await _hold_and_write_ping(
                conn, ctx, supplier, market, result.fields, auction, now, ping_id,
                test=lead_in.test, meta=meta, posting_lead_id=lead_id,
            )  # fmt: skip
            await posting._claim_key(conn, supplier, key, body, now)
            await posting._store_lead(conn, ctx, supplier, vertical, ping_id, lead_id, lead_in, result, now, score=scored)
    except intake.KeyTaken:  # a twin request with the same key went first: its answer
        async with ctx.db.read() as conn:
            replay = await _replay_post(conn, supplier.party_id, key, body)
        if replay is None:  # pragma: no cover
            raise _conflict("post_in_progress", "retry in a moment") from None
        return replay
    except intake.Duplicate as dup:
        raise intake.duplicate_error(vertical, dup.path) from None
    offered = _ping_out(held, market, result.fields, now)
    ping_row = posting._PingRow(
        id=ping_id, supplier_id=supplier.party_id, status=PING_POSTING, test=lead_in.test,
        fields=dict(result.fields), offer=None, expires_at=offered.expires_at or now, lead_id=lead_id,
    )  # fmt: skip
    return await posting._walk(
        ctx, market, supplier, ping_row, lead_id, held.auction.ranked,
        held.offer.promises() if held.offer else [], held.holds, result, lead_in, key, now,
        unsold_reasons=offered.reasons or None, mode="direct",
    )  # fmt: skip


def _pings_buyers(market: VerticalMarket) -> bool:
    """Whether an auction in this market may ping a buyer (a live-bid campaign); worked out
    once per loaded market."""
    return derived(market, "pings_buyers", lambda m: any(r.price_mode is PriceMode.LIVE and not r.calls for r in m.rules.values()))


class Explanation(msgspec.Struct, kw_only=True):
    """A dry run: what every campaign would decide for this lead, and the offer it would get."""

    vertical: str
    mode: str
    payout_minor: int
    currency: str
    entries: list[TraceEntry]
    score: LeadScore | None = None  # the lead's score and its parts (None: the vertical scores nothing)


async def explain(ctx: Context, supplier_id: uuid.UUID | None, data: PingIn) -> Explanation:
    """Run a lead through the rules without pinging a buyer, holding capacity or selling."""
    vertical, market = await _vertical_and_market(ctx, data.vertical)
    lead_in = LeadIn(vertical=data.vertical, fields=data.fields, test=True)
    result = validate_lead(vertical.fields, lead_in, Stage.PING, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    scored = await score_lead(market.scoring, ctx.market.history, market.vertical_id, result.fields, data.source)
    now = _now()
    dry = msgspec.structs.replace(ctx, http=None)
    auction = await _run_auction(
        dry, market, supplier_id or uuid.UUID(int=0), result.fields, now,
        max_sells=data.max_sells, test=True, ping_id=uuid.UUID(int=0), score=scored,
    )  # fmt: skip
    offer = build_offer(auction.ranked, now)
    entries = list(auction.entries.values())
    for decision in market.index.excluded(market.slug, result.fields, now):
        rules = market.rules[decision.campaign_id]
        entries.append(
            TraceEntry(campaign_id=decision.campaign_id, buyer_id=rules.buyer_id, reason=decision.reason, details=dict(decision.details))
        )
    return Explanation(
        vertical=market.slug,
        mode=auction.ranked.mode.value,
        payout_minor=offer.payout_minor if offer else 0,
        currency=market.currency,
        entries=sorted(entries, key=lambda e: (e.reason is not None, e.reason or "", e.campaign_id)),
        score=scored,
    )


def excluded_entries(market: VerticalMarket, fields: dict[str, Any], at: dt.datetime, *, calls: bool = False) -> list[TraceEntry]:
    """The campaigns the index left out of an auction, each with the reason ``evaluate`` gives,
    worked out again from the lead's stored (non-PII) fields at the auction's instant: the
    auction keeps only their count (a trace of thousands of campaigns per lead would cost more
    than the auction). From the campaigns as they are now, so marked ``recomputed``."""
    index = market.call_index if calls else market.index
    if index is None:
        return []
    return [
        TraceEntry(
            campaign_id=d.campaign_id, buyer_id=market.rules[d.campaign_id].buyer_id, reason=d.reason,
            details={**d.details, "recomputed": True},
        )
        for d in index.excluded(market.slug, fields, at)
    ]


async def traces_of(conn: AsyncConnection, subject_ids: list[uuid.UUID]) -> list[Trace]:
    rows = await conn.execute(
        sa.select(traces).where(traces.c.subject_id.in_(subject_ids)).order_by(traces.c.created_at)
    )
    return [
        Trace(
            subject_id=row.subject_id,
            stage=row.stage,
            created_at=row.created_at,
            entries=msgspec.convert(row.decisions["entries"], list[TraceEntry]),
            score=msgspec.convert(row.decisions["score"], LeadScore) if row.decisions.get("score") else None,
        )
        for row in rows
    ]
