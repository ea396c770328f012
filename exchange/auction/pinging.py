"""Ping: run the auction on the non-PII fields, hold capacity for the offered bids, store the
ping and its trace. Expiry gives unposted capacity back."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange import metrics
from exchange.auction.bidding import _Auction, _run_auction
from exchange.auction.context import (
    PING_EXPIRED,
    PING_OPEN,
    PING_POSTING,
    PING_UNMATCHED,
    Context,
    _now,
    _rate_limit,
    _vertical_and_market,
)
from exchange.auction.market import VerticalMarket
from exchange.auction.messages import (
    OfferedBidOut,
    PingIn,
    PingOut,
    TraceEntry,
)
from exchange.auction.offer import PingOffer, build_offer
from exchange.auction.ranking import RankedAuction
from exchange.auth.parties import Principal
from exchange.errors import validation_error
from exchange.ids import new_id
from exchange.intake import service as intake
from exchange.intake.messages import LeadIn
from exchange.intake.validate import Stage, ValidLead, validate_lead
from exchange.matching.caps import breach_details
from exchange.matching.eligibility import caps_now
from exchange.scoring.rules import LeadScore
from exchange.scoring.store import score_lead
from exchange.store.db import Database, insert_for
from exchange.store.tables import (
    cap_holds,
    pings,
    traces,
)


class Pinged(NamedTuple):
    """A ping that may be auctioned: its market, its validated fields and its score."""

    market: VerticalMarket
    lead: ValidLead
    score: LeadScore | None


async def admit_ping(ctx: Context, supplier: Principal, data: PingIn | Any) -> Pinged:
    """The rate limit, the vertical, the ping-stage validation (no PII; a 422 naming every
    field) and the score, for a lead ping or a call ping (``data``: vertical, fields, source,
    sub_ids, test)."""
    await _rate_limit(ctx, supplier.party_id)
    vertical, market = await _vertical_and_market(ctx, data.vertical)
    lead_in = LeadIn(vertical=data.vertical, fields=data.fields, source=data.source, sub_ids=data.sub_ids, test=data.test)
    result = validate_lead(vertical.fields, lead_in, Stage.PING, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    scored = await score_lead(market.scoring, ctx.market.history, market.vertical_id, result.fields, data.source)
    return Pinged(market, result, scored)


async def ping(ctx: Context, supplier: Principal, data: PingIn) -> PingOut:
    market, result, scored = await admit_ping(ctx, supplier, data)
    now = _now()
    ping_id = new_id()
    auction = await _run_auction(
        ctx, market, supplier.party_id, result.fields, now, max_sells=data.max_sells, test=data.test, ping_id=ping_id,
        score=scored,
    )  # fmt: skip
    meta = {"source": data.source, "sub_ids": msgspec.to_builtins(data.sub_ids) if data.sub_ids else None}
    return await _hold_and_store_ping(
        ctx, supplier, market, result.fields, auction, now, ping_id, test=data.test, meta=meta
    )


async def _hold_and_store_ping(
    ctx: Context,
    supplier: Principal,
    market: VerticalMarket,
    fields: Mapping[str, Any],
    auction: _Auction,
    now: dt.datetime,
    ping_id: uuid.UUID,
    *,
    test: bool,
    meta: dict[str, Any],
) -> PingOut:
    async with ctx.db.write() as conn:
        held = await _hold_and_write_ping(
            conn, ctx, supplier, market, fields, auction, now, ping_id, test=test, meta=meta
        )
    return _ping_out(held, market, fields, now)


class Held(msgspec.Struct, kw_only=True):
    """What holding capacity for a ping's offer came to (the ping row says the same)."""

    ping_id: uuid.UUID
    auction: _Auction
    offer: PingOffer | None
    holds: list[cap_store.Hold]


async def _hold_and_write_ping(
    conn: AsyncConnection,
    ctx: Context,
    supplier: Principal,
    market: VerticalMarket,
    fields: Mapping[str, Any],
    auction: _Auction,
    now: dt.datetime,
    ping_id: uuid.UUID,
    *,
    test: bool,
    meta: dict[str, Any],
    posting_lead_id: uuid.UUID | None = None,
) -> Held:
    """Hold capacity for the offered bids and write the ping, its holds and its trace, in the
    caller's write transaction. ``posting_lead_id``: the ping is posted in this same
    transaction (a direct post), so it is written already ``posting`` for that lead."""
    ttl = dt.timedelta(milliseconds=ctx.settings.ping_ttl_ms)
    offer, holds = await hold_offer(conn, market, auction, now, ttl, test=test)
    ranked = auction.ranked
    status = PING_OPEN if offer is not None else PING_UNMATCHED
    if posting_lead_id is not None:
        status = PING_POSTING
    await conn.execute(
        pings.insert(),  # a constant statement: SQLAlchemy compiles it once (not per lead)
        dict(
            id=ping_id,
            supplier_id=supplier.party_id,
            vertical_id=market.vertical_id,
            status=status,
            test=test,
            fields=dict(fields),
            offer=msgspec.to_builtins(
                {
                    # What a later post walks. A direct post walks it now, from memory, and
                    # its ping can never be posted again: a few hundred bids not written.
                    **({"ranked": ranked} if posting_lead_id is None else {}),
                    "promises": offer.promises() if offer else [],
                    "holds": holds,
                    "meta": meta,
                },
                enc_hook=intake.enc_hook,
            ),
            payout_minor=offer.payout_minor if offer else 0,
            expires_at=offer.expires_at if offer else now + ttl,
            created_at=now,
            lead_id=posting_lead_id,
        )
    )
    if holds:
        await conn.execute(
            cap_holds.insert(),
            [
                {"ping_id": ping_id, "campaign_id": uuid.UUID(h.campaign_id), "window_key": h.window_key, "spend_minor": h.spend_minor}
                for h in holds
            ],
        )
    await _write_trace(conn, ping_id, "ping", auction, now)
    return Held(ping_id=ping_id, auction=auction, offer=offer, holds=holds)


async def hold_offer(
    conn: AsyncConnection,
    market: VerticalMarket,
    auction: _Auction,
    now: dt.datetime,
    ttl: dt.timedelta,
    *,
    test: bool,
) -> tuple[PingOffer | None, list[cap_store.Hold]]:
    """Hold capacity for the offered bids (a test holds none); a bid whose cap filled up since
    the usage was read is dropped, with its reason in the trace, and the offer is rebuilt from
    what is left. ``auction.ranked`` becomes what the offer was built from."""
    ranked = auction.ranked
    holds: list[cap_store.Hold] = []
    for _ in range(ranked.max_sells + len(ranked.candidates()) + 1):
        offer = build_offer(ranked, now, ttl)
        if offer is None or test:
            break
        lost = None
        for bid in sorted(offer.bids, key=lambda b: b.campaign_id):
            if any(h.campaign_id == bid.campaign_id for h in holds):
                continue
            campaign = market.rules[bid.campaign_id]
            candidate = next(c for c in ranked.candidates() if c.campaign_id == bid.campaign_id)
            reserved = await cap_store.reserve(
                conn, campaign.campaign_id, caps_now(campaign, now), campaign.timezone,
                candidate.bid.amount_minor, now,
            )  # fmt: skip
            if isinstance(reserved, list):
                holds.extend(reserved)
                continue
            entry = auction.entries[bid.campaign_id]
            entry.reason = reserved.reason
            entry.details.update(breach_details(reserved))
            lost = bid.campaign_id
            break
        if lost is None:
            break
        ranked = _without(ranked, lost)
    auction.ranked = ranked
    return build_offer(ranked, now, ttl), holds


def _ping_out(held: Held, market: VerticalMarket, fields: Mapping[str, Any], now: dt.datetime) -> PingOut:
    auction, offer, ping_id = held.auction, held.offer, held.ping_id
    metrics.AUCTIONS.labels(market.slug, "unmatched" if offer is None else "offered").inc()
    if offer is None:
        return PingOut(
            status="rejected", ping_id=ping_id, payout_minor=0, currency=auction.currency,
            expires_at=None, reasons=_summary(auction, market, fields, now),
        )  # fmt: skip
    bids = (
        [OfferedBidOut(bid_id=_bid_id(ping_id, b.campaign_id), payout_minor=b.payout_minor) for b in offer.bids]
        if auction.ranked.max_sells > 1
        else []
    )
    return PingOut(
        status="accepted",
        ping_id=ping_id,
        payout_minor=offer.payout_minor,
        currency=auction.currency,
        expires_at=offer.expires_at,
        bids=bids,
    )


def _without(ranked: RankedAuction, campaign_id: str) -> RankedAuction:
    groups = tuple(
        group
        for group in (tuple(c for c in g if c.campaign_id != campaign_id) for g in ranked.groups)
        if group
    )
    return msgspec.structs.replace(ranked, groups=groups)


def _bid_id(ping_id: uuid.UUID, campaign_id: str) -> str:
    """Opaque to the supplier: which campaign bid is not its business."""
    return hashlib.sha256(f"{ping_id}:{campaign_id}".encode()).hexdigest()[:16]


def _summary(auction: _Auction, market: VerticalMarket | None = None, fields: Mapping[str, Any] | None = None, now: dt.datetime | None = None) -> list[str]:
    """The distinct reasons, most common first: what a supplier is told about a miss. With the
    market, campaigns the index skipped are counted under the filter that skipped them."""
    counts: dict[str, int] = {}
    for entry in auction.entries.values():
        if entry.reason:
            counts[entry.reason] = counts.get(entry.reason, 0) + 1
    if market is not None and fields is not None and now is not None:
        for decision in market.index.excluded(market.slug, fields, now):
            if decision.reason:
                counts[decision.reason] = counts.get(decision.reason, 0) + 1
    return [reason for reason, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


async def _write_trace(conn: AsyncConnection, subject_id: uuid.UUID, stage: str, auction: _Auction, now: dt.datetime) -> None:
    await write_stage(
        conn, subject_id, stage, list(auction.entries.values()), now,
        excluded_by_index=auction.excluded_by_index, score=auction.score,
    )  # fmt: skip


async def write_stage(
    conn: AsyncConnection, subject_id: uuid.UUID, stage: str, entries: list[TraceEntry], now: dt.datetime,
    *, excluded_by_index: int = 0, score: LeadScore | None = None,
) -> None:
    """One stage of a trace (written again, it replaces the stage)."""
    await conn.execute(
        _upsert_trace(conn.dialect.name),
        dict(
            subject_id=subject_id,
            stage=stage,
            decisions={
                "entries": entries,  # Structs: the column's msgspec encodes them
                "excluded_by_index": excluded_by_index,
                **({"score": score} if score is not None else {}),
            },
            created_at=now,
        ),
    )


@functools.cache
def _upsert_trace(dialect_name: str):  # type: ignore[no-untyped-def]
    """Built once per dialect, values bound at execution: compiled once, not per lead."""
    stmt = insert_for(dialect_name, traces)
    return stmt.on_conflict_do_update(
        index_elements=[traces.c.subject_id, traces.c.stage],
        set_={"decisions": stmt.excluded.decisions, "created_at": stmt.excluded.created_at},
    )


async def expire_ping(ctx: Context, ping_id: uuid.UUID) -> None:
    await expire_pings(ctx.db, ids=[ping_id])


async def expire_pings(db: Database, *, ids: list[uuid.UUID] | None = None, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Close open pings past their expiry (or those named) and give their capacity back."""
    now = now or _now()
    async with db.write() as conn:
        query = sa.select(pings.c.id).where(pings.c.status == PING_OPEN)
        query = query.where(pings.c.id.in_(ids)) if ids else query.where(pings.c.expires_at <= now)
        found = [row.id for row in await conn.execute(query.order_by(pings.c.id).limit(limit))]
        if not found:
            return 0
        closed = [
            row.id
            for row in await conn.execute(
                pings.update()
                .where(pings.c.id.in_(found), pings.c.status == PING_OPEN)
                .values(status=PING_EXPIRED)
                .returning(pings.c.id)
            )
        ]
        if not closed:
            return 0
        # Only the pings closed here give their capacity back: one posted since we looked is
        # being sold on the capacity it holds (its walk releases what it does not use).
        rows = await conn.execute(sa.select(cap_holds).where(cap_holds.c.ping_id.in_(closed)))
        holds = [cap_store.Hold(str(r.campaign_id), r.window_key, r.spend_minor) for r in rows]
        await cap_store.release(conn, holds)
        await conn.execute(cap_holds.delete().where(cap_holds.c.ping_id.in_(closed)))
        return len(closed)
