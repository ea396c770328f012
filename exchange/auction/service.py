"""Running the auction: ping, post, direct post, explain.

The decisions are the pure functions of ``exchange.matching`` and ``exchange.auction``; this
module feeds them what they need (campaigns from the market cache, usage and funds from the
database, bids from the buyers) and writes down what happened, in as few round trips as it can:

ping         read usage + buyer states + supplier terms (one read transaction)
             fan out to live-bid buyers (concurrently, under a deadline)
             rank; one write transaction: hold caps for the offered bids, store the ping + trace
post         one write transaction: claim the ping, store the lead, its PII and duplicate keys
             then per buyer in the walk: charge + hold, post to the buyer, sale or refund
             one write transaction: final status, release what is left, trace, answer
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange.auction import funds
from exchange.auction.fallback import Done, PostAction, PostOutcome, next_post, record, start_walk
from exchange.auction.margin import MarginRule, PercentMargin, resolve_margin
from exchange.auction.market import Market, VerticalMarket
from exchange.auction.messages import (
    OfferedBidOut,
    PingIn,
    PingOut,
    PostIn,
    PostOut,
    Trace,
    TraceEntry,
)
from exchange.auction.offer import build_offer
from exchange.auction.ranking import Bid, Mode, RankedAuction, rank
from exchange.auth.parties import Principal
from exchange.errors import ApiError, FieldProblem, validation_error
from exchange.ids import new_id
from exchange.intake import service as intake
from exchange.intake import verticals as vertical_store
from exchange.intake.messages import LeadIn
from exchange.intake.ratelimit import RateLimiter, retry_after_header
from exchange.intake.validate import Stage, ValidLead, validate_lead
from exchange.matching import CampaignRules, PriceMode, evaluate, reasons
from exchange.matching.caps import breach_details, window_key
from exchange.settings import Settings
from exchange.store.db import Database
from exchange.store.tables import (
    cap_holds,
    idempotency_keys,
    lead_pii,
    leads,
    pings,
    sales,
    traces,
)

log = logging.getLogger(__name__)

PING_OPEN = "open"
PING_POSTING = "posting"
PING_POSTED = "posted"
PING_EXPIRED = "expired"
PING_UNMATCHED = "unmatched"
LEAD_POSTING = "posting"
LEAD_SOLD = "sold"
LEAD_UNSOLD = "unsold"
NO_MARGIN = PercentMargin(bps=0)
POST_IDEMPOTENCY_PREFIX = "post:"

_encode = msgspec.json.Encoder(enc_hook=intake._enc_hook).encode


class Context(msgspec.Struct, kw_only=True, frozen=True):
    """What a request needs to run an auction; built once per process by the app."""

    db: Database
    settings: Settings
    market: Market
    http: aiohttp.ClientSession | None  # None: live-bid buyers are not pinged (dry runs)
    limiter: RateLimiter


class SupplierTerms(msgspec.Struct, frozen=True, kw_only=True):
    margin: MarginRule | None = None
    min_payout_minor: int = 0
    auction_mode: Mode | None = None
    pings_per_second: int = 0  # 0: unlimited
    ping_burst: int = 1


class _Auction(msgspec.Struct, kw_only=True):
    ranked: RankedAuction
    entries: dict[str, TraceEntry]
    excluded_by_index: int
    currency: str


def signing_secret(settings: Settings, buyer_id: str) -> str:
    """Each buyer's HMAC key for the requests we send it, derived from the exchange secret."""
    return hmac.new(
        settings.secret_key.encode(), f"buyer-signing:{buyer_id}".encode(), hashlib.sha256
    ).hexdigest()


# --- reading ---------------------------------------------------------------------------------


async def _supplier_terms(ctx: Context, supplier_id: uuid.UUID) -> SupplierTerms:
    row = await ctx.market.supplier_terms(supplier_id)
    if row is None:
        return SupplierTerms()
    return SupplierTerms(
        margin=msgspec.convert(row.margin, MarginRule) if row.margin else None,
        min_payout_minor=row.min_payout_minor,
        auction_mode=Mode(row.auction_mode) if row.auction_mode else None,
        pings_per_second=row.pings_per_second,
        ping_burst=row.ping_burst,
    )


async def _rate_limit(ctx: Context, supplier_id: uuid.UUID) -> None:
    """Pings (and direct posts) per second per supplier: 429 with Retry-After past the rate."""
    terms = await _supplier_terms(ctx, supplier_id)
    if not terms.pings_per_second:
        return
    decision = await ctx.limiter.check(
        f"pings:{supplier_id}", terms.pings_per_second, max(terms.ping_burst, 1)
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"more than {terms.pings_per_second} pings per second (burst {terms.ping_burst})",
            headers={"Retry-After": retry_after_header(decision)},
            details={"retry_after_s": round(decision.retry_after_s, 3)},
        )


def _windows(campaign: CampaignRules, now: dt.datetime) -> list[tuple[str, str]]:
    return [(campaign.campaign_id, window_key(c.window, campaign.timezone, now)) for c in campaign.caps]


# --- the auction core, shared by ping, direct post and explain ---------------------------------


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
) -> _Auction:
    candidates = market.index.candidates(market.slug, fields)
    async with ctx.db.read() as conn:
        wanted = [w for c in candidates for w in _windows(c, now)]
        usage = await cap_store.read_usage(conn, wanted)
        states = await funds.buyer_states(conn, {c.buyer_id for c in candidates})
    terms = await _supplier_terms(ctx, supplier_id)

    entries: dict[str, TraceEntry] = {}
    eligible: list[CampaignRules] = []
    for campaign in candidates:
        state = states.get(campaign.buyer_id, funds.BuyerState(0, None))
        decision = evaluate(
            campaign,
            fields,
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
    bids: list[Bid] = []
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
        state = states.get(campaign.buyer_id, funds.BuyerState(0, None))
        if amount > state.spendable_minor:
            entry.reason = reasons.INSUFFICIENT_BALANCE
            entry.details["price_minor"] = amount
            continue
        buyer = market.buyers.get(campaign.buyer_id)
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
            )
        )

    mode = terms.auction_mode or Mode(market.auction_mode)
    vertical_margin = msgspec.convert(market.margin, MarginRule) if market.margin else NO_MARGIN

    def margin_for(buyer_id: str) -> MarginRule:
        buyer = market.buyers.get(buyer_id)
        buyer_margin = msgspec.convert(buyer.margin, MarginRule) if buyer and buyer.margin else None
        return resolve_margin(vertical_margin, buyer=buyer_margin, supplier=terms.margin)

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
        excluded_by_index=len(market.rules) - len(candidates),
        currency=market.currency,
    )


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
    answers: dict[str, _Answer] = {}
    for campaign in live:
        endpoints = _endpoints(market, campaign.campaign_id)
        if endpoints is None or endpoints.ping is None:
            answers[campaign.campaign_id] = _Answer(
                reason=reasons.PING_ERROR, price_minor=0, latency_ms=0, detail="no ping endpoint"
            )
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
        answers[campaign_id] = _Answer(
            reason=reason,
            price_minor=price or 0,
            latency_ms=verdict.latency_ms,
            detail=verdict.detail or None,
        )
    return answers


def _endpoints(market: VerticalMarket, campaign_id: str) -> Any:
    from exchange import delivery

    raw = market.endpoints.get(campaign_id)
    if not raw:
        return None
    return msgspec.convert(raw, delivery.BuyerEndpoints)


# --- ping --------------------------------------------------------------------------------------


async def _vertical_and_market(ctx: Context, slug: str) -> tuple[vertical_store.Vertical, VerticalMarket]:
    async with ctx.db.read() as conn:
        vertical = await vertical_store.get(conn, slug)
    if vertical is None or not vertical.active:
        raise validation_error([FieldProblem("vertical", f"no active vertical named {slug!r}")])
    market = await ctx.market.get(slug)
    assert market is not None
    return vertical, market


async def ping(ctx: Context, supplier: Principal, data: PingIn) -> PingOut:
    await _rate_limit(ctx, supplier.party_id)
    vertical, market = await _vertical_and_market(ctx, data.vertical)
    lead_in = LeadIn(vertical=data.vertical, fields=data.fields, source=data.source, sub_ids=data.sub_ids, test=data.test)
    result = validate_lead(vertical.fields, lead_in, Stage.PING, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    now = _now()
    ping_id = new_id()
    auction = await _run_auction(
        ctx, market, supplier.party_id, result.fields, now, max_sells=data.max_sells, test=data.test, ping_id=ping_id
    )
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
    ttl = dt.timedelta(milliseconds=ctx.settings.ping_ttl_ms)
    ranked = auction.ranked
    holds: list[cap_store.Hold] = []
    async with ctx.db.write() as conn:
        # Hold capacity for the offered bids; a bid whose cap filled up since we read the usage
        # is dropped and the offer is rebuilt from what is left.
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
                held = await cap_store.reserve(
                    conn, campaign.campaign_id, campaign.caps, campaign.timezone, candidate.bid.amount_minor, now
                )
                if isinstance(held, list):
                    holds.extend(held)
                    continue
                entry = auction.entries[bid.campaign_id]
                entry.reason = held.reason
                entry.details.update(breach_details(held))
                lost = bid.campaign_id
                break
            if lost is None:
                break
            ranked = _without(ranked, lost)
        offer = build_offer(ranked, now, ttl)
        auction.ranked = ranked
        status = PING_OPEN if offer is not None else PING_UNMATCHED
        await conn.execute(
            pings.insert().values(
                id=ping_id,
                supplier_id=supplier.party_id,
                vertical_id=market.vertical_id,
                status=status,
                test=test,
                fields=dict(fields),
                offer=msgspec.to_builtins(
                    {
                        "ranked": ranked,
                        "promises": offer.promises() if offer else [],
                        "holds": holds,
                        "meta": meta,
                    },
                    enc_hook=intake._enc_hook,
                ),
                payout_minor=offer.payout_minor if offer else 0,
                expires_at=offer.expires_at if offer else now + ttl,
                created_at=now,
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
    if offer is None:
        return PingOut(
            status="rejected", ping_id=ping_id, payout_minor=0, currency=auction.currency,
            expires_at=None, reasons=_summary(auction, market, fields, now),
        )  # fmt: skip
    bids = (
        [OfferedBidOut(bid_id=_bid_id(ping_id, b.campaign_id), payout_minor=b.payout_minor) for b in offer.bids]
        if ranked.max_sells > 1
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
    await conn.execute(
        _upsert_trace(conn).values(
            subject_id=subject_id,
            stage=stage,
            decisions={
                "entries": [msgspec.to_builtins(e) for e in auction.entries.values()],
                "excluded_by_index": auction.excluded_by_index,
            },
            created_at=now,
        )
    )


def _upsert_trace(conn: AsyncConnection):  # type: ignore[no-untyped-def]
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(traces)
    return stmt.on_conflict_do_update(
        index_elements=[traces.c.subject_id, traces.c.stage],
        set_={"decisions": stmt.excluded.decisions, "created_at": stmt.excluded.created_at},
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- post --------------------------------------------------------------------------------------


class _PingRow(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    supplier_id: uuid.UUID
    status: str
    test: bool
    fields: dict[str, Any]
    offer: dict[str, Any] | None
    expires_at: dt.datetime
    lead_id: uuid.UUID | None


def _conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)


def _denormalize(spec: Any, value: Any) -> Any:
    """A stored value in a form its normaliser reads back to the same value. Only money
    differs: stored as minor units, written by suppliers in major units."""
    from exchange.intake.fields import FieldFormat

    if spec.format is FieldFormat.MONEY and isinstance(value, int):
        sign = "-" if value < 0 else ""
        return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
    return value


def _merge_with_ping(vertical: vertical_store.Vertical, ping_fields: Mapping[str, Any], post_fields: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Post fields over ping fields; a ping field may be omitted on the post but not changed."""
    by_name = {spec.name: spec for spec in vertical.fields}
    merged = dict(post_fields)
    for name, value in ping_fields.items():
        if name not in merged and name in by_name:
            merged[name] = _denormalize(by_name[name], value)
    return merged, []


def _contradictions(ping_fields: Mapping[str, Any], lead: ValidLead) -> list[FieldProblem]:
    problems = []
    for name, ping_value in ping_fields.items():
        value = lead.fields.get(name, lead.pii.get(name))
        if value != ping_value:
            problems.append(FieldProblem(f"fields.{name}", f"differs from the ping ({ping_value!r}); fields sent on the ping cannot change"))
    return problems


async def post(
    ctx: Context,
    supplier: Principal,
    data: PostIn,
    *,
    body: bytes,
    idempotency_key: str | None = None,
    direct: bool = False,
    unsold_reasons: list[str] | None = None,
) -> intake.Accepted:
    """Sell a pinged lead: the post walk over the ping's ranked bids, no loss to the supplier.

    ``direct``: the exchange made the ping itself (direct post), so a ping without bids is
    still posted, to record the lead as unsold."""
    now = _now()
    async with ctx.db.read() as conn:
        row = (await conn.execute(sa.select(pings).where(pings.c.id == data.ping_id))).first()
        if row is None:
            raise ApiError(404, "not_found", "no such ping")
        ping_row = _PingRow(
            id=row.id, supplier_id=row.supplier_id, status=row.status, test=row.test, fields=row.fields,
            offer=row.offer, expires_at=row.expires_at, lead_id=row.lead_id,
        )  # fmt: skip
        if ping_row.supplier_id != supplier.party_id:
            raise ApiError(403, "forbidden", "this ping belongs to another supplier")
        key = idempotency_key or f"{POST_IDEMPOTENCY_PREFIX}{data.ping_id}"
        replay = await _replay_post(conn, supplier.party_id, key, body, supplier_key=idempotency_key is not None and not idempotency_key.startswith("direct:"))
        if replay is not None:
            return replay
        vertical_id = row.vertical_id
        from exchange.store.tables import verticals as verticals_table

        slug = (await conn.execute(sa.select(verticals_table.c.slug).where(verticals_table.c.id == vertical_id))).scalar_one()
    postable = (PING_OPEN, PING_UNMATCHED) if direct else (PING_OPEN,)
    if ping_row.status not in postable:
        code = {PING_UNMATCHED: "ping_unmatched", PING_EXPIRED: "ping_expired"}.get(ping_row.status, "ping_used")
        raise _conflict(code, f"this ping cannot be posted: it is {ping_row.status}")
    if ping_row.expires_at <= now:
        raise _conflict("ping_expired", f"this ping expired at {ping_row.expires_at.isoformat()}")

    vertical, market = await _vertical_and_market(ctx, slug)
    merged, _ = _merge_with_ping(vertical, ping_row.fields, data.fields)
    meta = (ping_row.offer or {}).get("meta", {})
    lead_in = LeadIn(
        vertical=slug,
        fields=merged,
        source=meta.get("source"),
        sub_ids=msgspec.convert(meta["sub_ids"], intake.SubIds) if meta.get("sub_ids") else None,
        consent=data.consent,
        test=ping_row.test,
    )
    result = validate_lead(vertical.fields, lead_in, Stage.POST, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    contradictions = _contradictions(ping_row.fields, result)
    if contradictions:
        raise ApiError(422, "contradicts_ping", "the post changes fields sent on the ping", fields=contradictions)

    offer = ping_row.offer or {}
    ranked = msgspec.convert(offer["ranked"], RankedAuction)
    promises = list(offer.get("promises", []))
    holds = [msgspec.convert(h, cap_store.Hold) for h in offer.get("holds", [])]
    if data.bid_ids is not None:
        ranked, promises = _choose_bids(ranked, promises, data.ping_id, data.bid_ids)

    try:
        lead_id = await _claim_ping_and_store_lead(
            ctx, supplier, vertical, ping_row, lead_in, result, key, body, now, direct=direct
        )
    except _Replayed as replayed:
        return replayed.accepted
    return await _walk(
        ctx, market, supplier, ping_row, lead_id, ranked, promises, holds, result, lead_in, key, now,
        unsold_reasons=unsold_reasons,
    )  # fmt: skip


def _choose_bids(ranked: RankedAuction, promises: list[int], ping_id: uuid.UUID, bid_ids: list[str]) -> tuple[RankedAuction, list[int]]:
    offered = ranked.groups[0][: ranked.max_sells] if ranked.groups else ()
    chosen = {c.campaign_id for c in offered if _bid_id(ping_id, c.campaign_id) in set(bid_ids)}
    unknown = set(bid_ids) - {_bid_id(ping_id, c.campaign_id) for c in offered}
    if unknown or not chosen:
        raise validation_error([FieldProblem("bid_ids", "name bids offered on this ping")])
    dropped = {c.campaign_id for c in offered} - chosen
    for campaign_id in dropped:
        ranked = _without(ranked, campaign_id)
    kept = [c.payout_minor for c in offered if c.campaign_id in chosen]
    return ranked, kept


async def _replay_post(
    conn: AsyncConnection, party_id: uuid.UUID, key: str, body: bytes, *, supplier_key: bool = False
) -> intake.Accepted | None:
    row = (
        await conn.execute(
            sa.select(idempotency_keys.c.request_hash, idempotency_keys.c.status_code, idempotency_keys.c.response)
            .where(idempotency_keys.c.party_id == party_id, idempotency_keys.c.key == key)
        )
    ).first()
    if row is None:
        return None
    if row.status_code is None:
        raise _conflict("post_in_progress", "this lead is being sold right now; retry in a moment for its answer")
    if row.request_hash != intake.request_hash(body):
        if supplier_key:
            raise ApiError(
                422, "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
                fields=[FieldProblem("headers.Idempotency-Key", "already used for another request")],
            )  # fmt: skip
        raise _conflict("ping_used", "this ping was already posted with another body")
    return intake.Accepted(status_code=row.status_code, body=row.response, replayed=True)


async def _claim_ping_and_store_lead(
    ctx: Context,
    supplier: Principal,
    vertical: vertical_store.Vertical,
    ping_row: _PingRow,
    lead_in: LeadIn,
    lead: ValidLead,
    key: str,
    body: bytes,
    now: dt.datetime,
    *,
    direct: bool,
) -> uuid.UUID:
    lead_id = new_id()
    postable = (PING_OPEN, PING_UNMATCHED) if direct else (PING_OPEN,)
    try:
        async with ctx.db.write() as conn:
            claimed_key = await conn.execute(
                intake._insert(conn, idempotency_keys)
                .values(party_id=supplier.party_id, key=key, request_hash=intake.request_hash(body), status_code=None, response=None, created_at=now)
                .on_conflict_do_nothing()
                .returning(idempotency_keys.c.key)
            )
            if claimed_key.first() is None:
                raise intake._KeyTaken()
            claimed = await conn.execute(
                pings.update()
                .where(pings.c.id == ping_row.id, pings.c.status.in_(postable), pings.c.expires_at >= now)
                .values(status=PING_POSTING, lead_id=lead_id)
            )
            if claimed.rowcount != 1:
                raise _conflict("ping_used", "this ping was posted or expired meanwhile")
            await intake.claim_duplicates(conn, ctx.settings, vertical, lead, lead_id, now, test=lead_in.test)
            await conn.execute(
                leads.insert().values(
                    id=lead_id,
                    vertical_id=vertical.id,
                    vertical_version=vertical.version,
                    supplier_id=supplier.party_id,
                    status=LEAD_POSTING,
                    test=lead_in.test,
                    source=lead_in.source,
                    sub_ids=msgspec.to_builtins(lead_in.sub_ids) if lead_in.sub_ids else None,
                    fields=lead.fields,
                    consent=msgspec.to_builtins(lead.consent) if lead.consent else None,
                    created_at=now,
                    ping_id=ping_row.id,
                    sold_count=0,
                )
            )
            if lead.pii:
                await conn.execute(lead_pii.insert().values(lead_id=lead_id, pii=lead.pii))
    except intake._KeyTaken:
        if direct:  # our own ping lost the race to a twin request: free its holds
            await expire_ping(ctx, ping_row.id)
        async with ctx.db.read() as conn:
            replay = await _replay_post(conn, supplier.party_id, key, body)
        if replay is None:  # pragma: no cover
            raise _conflict("post_in_progress", "retry in a moment") from None
        raise _Replayed(replay) from None
    except intake._Duplicate as dup:
        await expire_ping(ctx, ping_row.id)  # a duplicate will not be sold: free its holds now
        raise intake.duplicate_error(vertical, dup.path) from None
    return lead_id


class _Replayed(Exception):
    def __init__(self, accepted: intake.Accepted) -> None:
        self.accepted = accepted


async def _walk(
    ctx: Context,
    market: VerticalMarket,
    supplier: Principal,
    ping_row: _PingRow,
    lead_id: uuid.UUID,
    ranked: RankedAuction,
    promises: list[int],
    holds: list[cap_store.Hold],
    lead: ValidLead,
    lead_in: LeadIn,
    key: str,
    now: dt.datetime,
    *,
    unsold_reasons: list[str] | None,
) -> intake.Accepted:
    overrides: dict[str, TraceEntry] = {}
    held = {h.campaign_id for h in holds}
    references: dict[str, str | None] = {}
    done: Done | None = None
    if promises and not lead_in.test:
        state = start_walk(ranked, promises)
        while True:
            action = next_post(state)
            if isinstance(action, Done):
                done = action
                break
            outcome = await _post_one(
                ctx, market, action, lead_id, ping_row, lead, lead_in, holds, held, overrides,
                references, now, max_sells=ranked.max_sells,
            )  # fmt: skip
            state = record(state, action.candidate.campaign_id, outcome)
    sold = list(done.sales) if done else []
    payout = sum(s.payout_minor for s in sold)
    status = LEAD_SOLD if sold else LEAD_UNSOLD
    entries = _post_entries(ranked, done, overrides)
    out = PostOut(
        status=status,
        lead_id=lead_id,
        vertical=market.slug,
        test=lead_in.test,
        payout_minor=payout,
        currency=market.currency,
        sales=len(sold),
        reasons=[] if sold else (unsold_reasons or sorted({e.reason for e in entries.values() if e.reason})),
    )
    response = _encode(out)
    async with ctx.db.write() as conn:
        await conn.execute(leads.update().where(leads.c.id == lead_id).values(status=status))
        await conn.execute(pings.update().where(pings.c.id == ping_row.id).values(status=PING_POSTED))
        # capacity still held for bids that never sold goes back
        leftover = [h for h in holds if h.campaign_id in held and h.campaign_id not in {s.campaign_id for s in sold}]
        await cap_store.release(conn, leftover)
        await conn.execute(cap_holds.delete().where(cap_holds.c.ping_id == ping_row.id))
        await _write_trace(conn, lead_id, "post", _Auction(ranked=ranked, entries=entries, excluded_by_index=0, currency=market.currency), now)
        await conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.party_id == supplier.party_id, idempotency_keys.c.key == key)
            .values(status_code=201, response=response)
        )
    return intake.Accepted(status_code=201, body=response, replayed=False)


def _post_entries(ranked: RankedAuction, done: Done | None, overrides: dict[str, TraceEntry]) -> dict[str, TraceEntry]:
    entries: dict[str, TraceEntry] = {}
    by_id = {c.campaign_id: c for c in ranked.candidates()}
    for result in done.results if done else ():
        c = by_id[result.campaign_id]
        entries[result.campaign_id] = overrides.get(result.campaign_id) or TraceEntry(
            campaign_id=result.campaign_id, buyer_id=result.buyer_id, reason=result.reason.value,
            bid_minor=c.bid.amount_minor, payout_minor=c.payout_minor,
        )  # fmt: skip
    return entries


async def _post_one(
    ctx: Context,
    market: VerticalMarket,
    action: PostAction,
    lead_id: uuid.UUID,
    ping_row: _PingRow,
    lead: ValidLead,
    lead_in: LeadIn,
    holds: list[cap_store.Hold],
    held: set[str],
    overrides: dict[str, TraceEntry],
    references: dict[str, str | None],
    now: dt.datetime,
    *,
    max_sells: int,
) -> PostOutcome:
    from exchange import delivery

    candidate = action.candidate
    campaign = market.rules.get(candidate.campaign_id)
    price = candidate.bid.amount_minor
    entry = TraceEntry(
        campaign_id=candidate.campaign_id, buyer_id=candidate.buyer_id, reason=None,
        bid_minor=price, payout_minor=action.promised_payout_minor,
    )  # fmt: skip
    overrides[candidate.campaign_id] = entry
    if campaign is None:
        entry.reason = reasons.POST_ERROR
        entry.details["error"] = "campaign removed since the ping"
        return PostOutcome.ERROR
    # Money and capacity first, in one transaction: a buyer is never posted a lead it
    # cannot pay for or has no room for.
    new_holds: list[cap_store.Hold] = []
    async with ctx.db.write() as conn:
        if not await funds.charge(conn, campaign.buyer_id, price, now):
            entry.reason = reasons.INSUFFICIENT_BALANCE
            return PostOutcome.ERROR
        if campaign.campaign_id not in held:
            reserved = await cap_store.reserve(conn, campaign.campaign_id, campaign.caps, campaign.timezone, price, now)
            if not isinstance(reserved, list):
                await funds.refund(conn, campaign.buyer_id, price, now)
                entry.reason = reserved.reason
                entry.details.update(breach_details(reserved))
                return PostOutcome.ERROR
            new_holds = reserved
    endpoints = _endpoints(market, campaign.campaign_id)
    outcome = PostOutcome.ACCEPTED
    reference = None
    if endpoints is not None and endpoints.post is not None:
        payload = delivery.LeadPayload(
            lead_id=str(lead_id), ping_id=str(ping_row.id), vertical=market.slug, fields=lead.fields,
            pii=lead.pii, consent=msgspec.to_builtins(lead.consent) if lead.consent else None,
            source=lead_in.source, test=lead_in.test,
        )  # fmt: skip
        try:
            request = delivery.build_request(
                endpoints.post, "post", payload, secret=signing_secret(ctx.settings, campaign.buyer_id),
                now_s=int(now.timestamp()), delivery_id=f"{lead_id}:{campaign.campaign_id}",
            )  # fmt: skip
        except delivery.MappingError as exc:
            request = None
            entry.details["error"] = str(exc)[:200]
        if request is None or ctx.http is None:  # unmappable lead, or a dry run
            entry.reason = reasons.POST_ERROR
            entry.reason = reasons.POST_ERROR
            outcome = PostOutcome.ERROR
        else:
            exchange = await delivery.send(ctx.http, request, endpoints.post.timeout_for("post"))
            verdict = delivery.classify_post(endpoints.post, exchange)
            outcome = verdict.outcome
            entry.latency_ms = verdict.latency_ms
            if verdict.reason is not None:
                entry.reason = verdict.reason
                if verdict.detail:
                    entry.details["answer"] = verdict.detail
            reference = verdict.reference
    campaign_holds = [h for h in holds if h.campaign_id == campaign.campaign_id] + new_holds
    async with ctx.db.write() as conn:
        if outcome is PostOutcome.ACCEPTED:
            bumped = await conn.execute(
                leads.update()
                .where(leads.c.id == lead_id, leads.c.sold_count < max_sells)
                .values(sold_count=leads.c.sold_count + 1)
            )
            if bumped.rowcount != 1:  # pragma: no cover - the walk never over-sells
                raise RuntimeError("lead already sold as often as it may be")
            await conn.execute(
                sales.insert().values(
                    id=new_id(), lead_id=lead_id, campaign_id=uuid.UUID(campaign.campaign_id),
                    buyer_id=uuid.UUID(campaign.buyer_id), supplier_id=ping_row.supplier_id,
                    price_minor=price, payout_minor=action.promised_payout_minor,
                    margin_minor=price - action.promised_payout_minor, currency=market.currency,
                    reference=reference, created_at=now,
                )
            )  # fmt: skip
            await funds.mark_won(conn, campaign.buyer_id, now)
            entry.reason = reasons.SOLD
            held.discard(campaign.campaign_id)  # the hold became a sale: it is kept
        else:
            await funds.refund(conn, campaign.buyer_id, price, now)
            await cap_store.release(conn, campaign_holds)
            held.discard(campaign.campaign_id)
    references[campaign.campaign_id] = reference
    return outcome


# --- expiry ------------------------------------------------------------------------------------


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
        closed = await conn.execute(
            pings.update().where(pings.c.id.in_(found), pings.c.status == PING_OPEN).values(status=PING_EXPIRED)
        )
        rows = await conn.execute(sa.select(cap_holds).where(cap_holds.c.ping_id.in_(found)))
        holds = [cap_store.Hold(str(r.campaign_id), r.window_key, r.spend_minor) for r in rows]
        await cap_store.release(conn, holds)
        await conn.execute(cap_holds.delete().where(cap_holds.c.ping_id.in_(found)))
        return closed.rowcount


# --- direct post -------------------------------------------------------------------------------


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


# --- explain and traces ----------------------------------------------------------------------


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
