"""Post: claim the ping, store the lead, then walk the ranked bids (charge, hold, post to the
buyer, sale or refund) without ever paying the supplier less than promised."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange import metrics
from exchange.auction import walking
from exchange.auction.bidding import _Auction
from exchange.auction.context import (
    LEAD_POSTING,
    LEAD_SOLD,
    LEAD_UNSOLD,
    PING_EXPIRED,
    PING_OPEN,
    PING_POSTED,
    PING_POSTING,
    PING_UNMATCHED,
    POST_IDEMPOTENCY_PREFIX,
    Context,
    _conflict,
    _encode,
    _now,
    _vertical_and_market,
)
from exchange.auction.fallback import Done, start_walk
from exchange.auction.market import VerticalMarket
from exchange.auction.messages import (
    PostIn,
    PostOut,
    TraceEntry,
)
from exchange.auction.pinging import _bid_id, _without, _write_trace, expire_ping
from exchange.auction.ranking import RankedAuction
from exchange.auth.parties import Principal
from exchange.errors import ApiError, FieldProblem, validation_error
from exchange.ids import new_id
from exchange.intake import service as intake
from exchange.intake import verticals as vertical_store
from exchange.intake.messages import LeadIn
from exchange.intake.validate import Stage, ValidLead, validate_lead
from exchange.scoring.rules import LeadScore
from exchange.scoring.store import score_lead
from exchange.store.db import insert_for
from exchange.store.tables import (
    cap_holds,
    idempotency_keys,
    leads,
    pings,
)


class _PingRow(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    supplier_id: uuid.UUID
    status: str
    test: bool
    fields: dict[str, Any]
    offer: dict[str, Any] | None
    expires_at: dt.datetime
    lead_id: uuid.UUID | None


def _denormalize(spec: Any, value: Any) -> Any:
    """A stored value in a form its normaliser reads back to the same value. Only money
    differs: stored as minor units, written by suppliers in major units."""
    from exchange.intake.fields import FieldFormat

    if spec.format is FieldFormat.MONEY and isinstance(value, int):
        sign = "-" if value < 0 else ""
        return f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
    return value


def _merge_with_ping(vertical: vertical_store.Vertical, ping_fields: Mapping[str, Any], post_fields: Mapping[str, Any]) -> dict[str, Any]:
    """Post fields over ping fields; a ping field may be omitted on the post but not changed."""
    by_name = {spec.name: spec for spec in vertical.fields}
    merged = dict(post_fields)
    for name, value in ping_fields.items():
        if name not in merged and name in by_name:
            merged[name] = _denormalize(by_name[name], value)
    return merged


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
    merged = _merge_with_ping(vertical, ping_row.fields, data.fields)
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
    # The lead as posted (every non-PII field, not only the ping's) is what its score says.
    scored = await score_lead(market.scoring, ctx.market.history, market.vertical_id, result.fields, lead_in.source)

    try:
        lead_id = await _claim_ping_and_store_lead(
            ctx, supplier, vertical, ping_row, lead_in, result, key, body, now, direct=direct, score=scored
        )
    except _Replayed as replayed:
        return replayed.accepted
    return await _walk(
        ctx, market, supplier, ping_row, lead_id, ranked, promises, holds, result, lead_in, key, now,
        unsold_reasons=unsold_reasons, mode="direct" if direct else "post",
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
    score: LeadScore | None = None,
) -> uuid.UUID:
    lead_id = new_id()
    postable = (PING_OPEN, PING_UNMATCHED) if direct else (PING_OPEN,)
    try:
        async with ctx.db.write() as conn:
            await _claim_key(conn, supplier, key, body, now)
            claimed = await conn.execute(
                pings.update()
                .where(pings.c.id == ping_row.id, pings.c.status.in_(postable), pings.c.expires_at >= now)
                .values(status=PING_POSTING, lead_id=lead_id)
            )
            if claimed.rowcount != 1:
                raise _conflict("ping_used", "this ping was posted or expired meanwhile")
            await _store_lead(conn, ctx, supplier, vertical, ping_row.id, lead_id, lead_in, lead, now, score=score)
    except intake.KeyTaken:
        if direct:  # our own ping lost the race to a twin request: free its holds
            await expire_ping(ctx, ping_row.id)
        async with ctx.db.read() as conn:
            replay = await _replay_post(conn, supplier.party_id, key, body)
        if replay is None:  # pragma: no cover
            raise _conflict("post_in_progress", "retry in a moment") from None
        raise _Replayed(replay) from None
    except intake.Duplicate as dup:
        await expire_ping(ctx, ping_row.id)  # a duplicate will not be sold: free its holds now
        raise intake.duplicate_error(vertical, dup.path) from None
    return lead_id


async def _claim_key(conn: AsyncConnection, supplier: Principal, key: str, body: bytes, now: dt.datetime) -> None:
    """Take the post's idempotency key (its answer is filled in when the walk ends), or raise
    ``KeyTaken``: a twin request took it first."""
    claimed_key = await conn.execute(
        _key_claim(conn.dialect.name),
        dict(party_id=supplier.party_id, key=key, request_hash=intake.request_hash(body), status_code=None,
             response=None, created_at=now),
    )  # fmt: skip
    if claimed_key.first() is None:
        raise intake.KeyTaken()


@functools.cache
def _key_claim(dialect_name: str) -> Any:
    """Built once per dialect, values bound at execution: compiled once, not per post."""
    return insert_for(dialect_name, idempotency_keys).on_conflict_do_nothing().returning(idempotency_keys.c.key)


async def _store_lead(
    conn: AsyncConnection,
    ctx: Context,
    supplier: Principal,
    vertical: vertical_store.Vertical,
    ping_id: uuid.UUID,
    lead_id: uuid.UUID,
    lead_in: LeadIn,
    lead: ValidLead,
    now: dt.datetime,
    *,
    score: LeadScore | None = None,
) -> None:
    """Claim the lead's duplicate keys (or raise ``Duplicate``) and store it, ``posting``, with
    its score (None: its vertical scores nothing)."""
    await intake.claim_duplicates(conn, ctx.settings, vertical, lead, lead_id, now, test=lead_in.test)
    await intake.insert_lead(
        conn, lead_id=lead_id, vertical=vertical, supplier_id=supplier.party_id,
        lead_in=lead_in, lead=lead, status=LEAD_POSTING, ping_id=ping_id, now=now,
        score=score.score if score else None, priority=score.priority if score else None,
    )  # fmt: skip


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
    mode: str,
) -> intake.Accepted:
    overrides: dict[str, TraceEntry] = {}
    memo = walking.Memo(
        ping_id=ping_row.id, supplier_id=ping_row.supplier_id, currency=market.currency,
        max_sells=ranked.max_sells, holds=list(holds), held=sorted({h.campaign_id for h in holds}),
    )  # fmt: skip
    done: Done | None = None
    if promises and not lead_in.test:
        memo.state = start_walk(ranked, promises)
        done = await walking.run(ctx, market, memo, lead_id, overrides, now, _inline(market, lead, lead_in))
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
        # Constant statements, the values bound apart: SQLAlchemy compiles each once, not per lead.
        walk = msgspec.to_builtins(memo, enc_hook=intake.enc_hook) if memo.pending else None
        await conn.execute(_SET_LEAD, {"_id": lead_id, "status": status, "walk": walk})
        await conn.execute(_SET_PING, {"_id": ping_row.id, "status": PING_POSTED})
        # Capacity still held for bids that never sold goes back.
        sold_campaigns = {s.campaign_id for s in sold}
        leftover = [h for h in memo.holds if h.campaign_id in set(memo.held) and h.campaign_id not in sold_campaigns]
        await cap_store.release(conn, leftover)
        memo.holds = [h for h in memo.holds if h not in leftover]
        await conn.execute(cap_holds.delete().where(cap_holds.c.ping_id == ping_row.id))
        await _write_trace(conn, lead_id, "post", _Auction(ranked=ranked, entries=entries, excluded_by_index=0, currency=market.currency), now)
        await conn.execute(_SET_ANSWER, {"_party": supplier.party_id, "_key": key, "status_code": 201, "response": response})
    if not lead_in.test:
        metrics.LEADS.labels(market.slug, mode, status).inc()
        if sold:
            metrics.SALES.labels(market.slug, mode).inc(len(sold))
    # Only now, with the walk stored, may a worker pick up the deliveries left to retry.
    await walking.enqueue_retries(memo)
    bought_by_team = any(s.buyer_id in market.teams for s in sold)
    if not lead_in.test and (status == LEAD_UNSOLD or bought_by_team):
        from exchange.teams import routing as team_routing  # teams import the auction

        # To an internal team: the one that bought it in the auction, or (unsold) the one
        # routed for its vertical and source, if any. Other sold leads cost nothing here.
        await team_routing.hand_over(ctx.db, [lead_id])
    return intake.Accepted(status_code=201, body=response, replayed=False)


# The walk's last writes, built once (the SET columns are the keys of each execution's values).
_SET_LEAD = leads.update().where(leads.c.id == sa.bindparam("_id"))
_SET_PING = pings.update().where(pings.c.id == sa.bindparam("_id"))
_SET_ANSWER = idempotency_keys.update().where(
    idempotency_keys.c.party_id == sa.bindparam("_party"), idempotency_keys.c.key == sa.bindparam("_key")
)


def _inline(market: VerticalMarket, lead: ValidLead, lead_in: LeadIn) -> walking.InlineLead:
    """The lead as ``intake.insert_lead`` stored it (JSON columns), for the first attempts."""
    stored = msgspec.json.decode(
        intake._encode(
            [lead.fields, lead.pii, msgspec.to_builtins(lead.consent) if lead.consent else None]
        )
    )
    return walking.InlineLead(
        vertical=market.slug, fields=stored[0], pii=stored[1], consent=stored[2],
        source=lead_in.source, test=lead_in.test,
    )  # fmt: skip


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
