"""Direct post (ping and post in one call), the dry-run explain, and reading traces."""

from __future__ import annotations

import uuid

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.bidding import _run_auction
from exchange.auction.context import Context, _now, _rate_limit, _vertical_and_market
from exchange.auction.messages import (
    PingIn,
    PostIn,
    Trace,
    TraceEntry,
)
from exchange.auction.offer import build_offer
from exchange.auction.pinging import _hold_and_store_ping, expire_ping
from exchange.auction.posting import _replay_post, post
from exchange.auth.parties import Principal
from exchange.errors import validation_error
from exchange.ids import new_id
from exchange.intake import service as intake
from exchange.intake.messages import LeadIn
from exchange.intake.validate import Stage, validate_lead
from exchange.store.tables import (
    traces,
)


async def direct_post(
    ctx: Context, supplier: Principal, lead_in: LeadIn, *, body: bytes, idempotency_key: str | None
) -> intake.Accepted:
    """Ping and post in one call: the same auction, run by the exchange on the supplier's behalf."""
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
    async with ctx.db.read() as conn:  # a duplicate is refused before any buyer is pinged
        duplicate = await intake.find_duplicate(conn, ctx.settings, vertical, result, _now(), test=lead_in.test)
    if duplicate is not None:
        raise intake.duplicate_error(vertical, duplicate)
    now = _now()
    ping_id = new_id()
    auction = await _run_auction(
        ctx, market, supplier.party_id, result.fields, now, max_sells=1, test=lead_in.test, ping_id=ping_id
    )
    meta = {"source": lead_in.source, "sub_ids": msgspec.to_builtins(lead_in.sub_ids) if lead_in.sub_ids else None}
    offered = await _hold_and_store_ping(
        ctx, supplier, market, result.fields, auction, now, ping_id, test=lead_in.test, meta=meta
    )
    post_in = PostIn(ping_id=ping_id, fields=lead_in.fields, consent=lead_in.consent)
    try:
        return await post(
            ctx, supplier, post_in, body=body, idempotency_key=idempotency_key or f"direct:{ping_id}",
            direct=True, unsold_reasons=offered.reasons or None,
        )  # fmt: skip
    except Exception:
        # Nobody will post this internal ping: give back what it holds now, not at expiry.
        await expire_ping(ctx, ping_id)
        raise


class Explanation(msgspec.Struct, kw_only=True):
    """A dry run: what every campaign would decide for this lead, and the offer it would get."""

    vertical: str
    mode: str
    payout_minor: int
    currency: str
    entries: list[TraceEntry]


async def explain(ctx: Context, supplier_id: uuid.UUID | None, data: PingIn) -> Explanation:
    """Run a lead through the rules without pinging a buyer, holding capacity or selling."""
    vertical, market = await _vertical_and_market(ctx, data.vertical)
    lead_in = LeadIn(vertical=data.vertical, fields=data.fields, test=True)
    result = validate_lead(vertical.fields, lead_in, Stage.PING, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    now = _now()
    dry = msgspec.structs.replace(ctx, http=None)
    auction = await _run_auction(
        dry, market, supplier_id or uuid.UUID(int=0), result.fields, now,
        max_sells=data.max_sells, test=True, ping_id=uuid.UUID(int=0),
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
    )


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
        )
        for row in rows
    ]
