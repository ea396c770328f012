"""Suppliers ping and post; everyone reads the traces that concern them."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from exchange.auction import service
from exchange.auction.messages import PingIn, PingOut, PostIn, PostOut, Trace
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind, Principal
from exchange.errors import forbidden, not_found
from exchange.intake.service import IDEMPOTENCY_REPLAY_HEADER
from exchange.store.tables import calls, leads, pings, verticals


def auction_of(request: Request) -> service.Context:
    return request.app.state.auction


def _answer(accepted) -> Response:  # type: ignore[no-untyped-def]
    headers = {IDEMPOTENCY_REPLAY_HEADER: "true"} if accepted.replayed else {}
    return Response(
        content=accepted.body, status_code=accepted.status_code, media_type="application/json",
        headers=headers,
    )  # fmt: skip


class PingController(Controller):
    path = "/v1/pings"
    tags = ["ping-post"]

    @post(
        guards=[allow(PartyKind.SUPPLIER)],
        status_code=200,
        summary="Ping: what would this lead sell for? (no PII)",
        description=(
            "Runs the auction on the lead's non-PII fields: live-bid buyers are pinged "
            "concurrently under the auction deadline, fixed-price campaigns bid their price. "
            "An accepted ping holds the buyers' capacity until `expires_at`; post the full lead "
            "with its `ping_id` before then."
        ),
    )
    async def ping(self, request: Request, data: JSONBody[PingIn]) -> PingOut:
        principal: Principal = request.user
        return await service.ping(auction_of(request), principal, data)


class PostController(Controller):
    path = "/v1/posts"
    tags = ["ping-post"]

    @post(
        guards=[allow(PartyKind.SUPPLIER)],
        summary="Post: sell a pinged lead (the full lead, PII included)",
        description=(
            "Fields sent on the ping may be omitted but not changed. Idempotent on `ping_id`: "
            "posting the same ping again returns the first answer."
        ),
    )
    async def post_lead(self, request: Request, data: JSONBody[PostIn]) -> Response[PostOut]:
        principal: Principal = request.user
        body = await request.body()
        return _answer(await service.post(auction_of(request), principal, data, body=body))


class TraceView(msgspec.Struct, kw_only=True):
    """Why a lead went where it went. Operators see every campaign; a buyer sees its own
    campaigns; a supplier sees the reasons without whose they were."""

    subject_id: uuid.UUID
    lead_id: uuid.UUID | None
    ping_id: uuid.UUID | None
    stages: list[Trace]
    reasons: list[str]
    # The lead's score and priority band (exchange.scoring); operators only, None when unscored.
    score: int | None = None
    priority: str | None = None


async def _trace(request: Request, *, lead_id: uuid.UUID | None, ping_id: uuid.UUID | None) -> TraceView:
    principal: Principal = request.user
    ctx = auction_of(request)
    score = priority = None
    async with ctx.db.read() as conn:
        if lead_id is not None:
            row = (
                await conn.execute(
                    sa.select(leads.c.supplier_id, leads.c.ping_id, leads.c.score, leads.c.priority).where(leads.c.id == lead_id)
                )
            ).first()
            if row is None:
                raise not_found("lead")
            supplier_id, ping_id = row.supplier_id, row.ping_id
            score, priority = row.score, row.priority
        else:
            row = (await conn.execute(sa.select(pings.c.supplier_id, pings.c.lead_id).where(pings.c.id == ping_id))).first()
            if row is None:  # a call ping (exchange.calls) is traced under the call's id
                row = (await conn.execute(sa.select(calls.c.supplier_id, calls.c.lead_id).where(calls.c.id == ping_id))).first()
            if row is None:
                raise not_found("ping")
            supplier_id, lead_id = row.supplier_id, row.lead_id
            if lead_id is not None:
                scored = (await conn.execute(sa.select(leads.c.score, leads.c.priority).where(leads.c.id == lead_id))).first()
                if scored is not None:
                    score, priority = scored.score, scored.priority
        if principal.kind is PartyKind.SUPPLIER and supplier_id != principal.party_id:
            raise forbidden("this lead belongs to another supplier")
        ids = [i for i in (ping_id, lead_id) if i is not None]
        stages = await service.traces_of(conn, ids)
        if principal.kind is not PartyKind.SUPPLIER:
            await _explain_left_out(ctx, conn, stages, lead_id=lead_id, ping_id=ping_id)
    reasons = sorted({e.reason for t in stages for e in t.entries if e.reason})
    if principal.kind in (PartyKind.BUYER, PartyKind.TEAM):
        mine = str(principal.party_id)
        stages = [msgspec.structs.replace(t, entries=[e for e in t.entries if e.buyer_id == mine]) for t in stages]
        if not any(t.entries for t in stages):
            raise forbidden("none of your campaigns saw this lead")
        reasons = sorted({e.reason for t in stages for e in t.entries if e.reason})
    elif principal.kind is PartyKind.SUPPLIER:
        stages = []  # which buyer said what is not the supplier's to know
    if not principal.is_operator:  # how the exchange rates a lead and its source is its own
        stages = [msgspec.structs.replace(t, score=None) for t in stages]
        score = priority = None
    return TraceView(
        subject_id=lead_id or ping_id, lead_id=lead_id, ping_id=ping_id, stages=stages, reasons=reasons,
        score=score, priority=priority,
    )  # fmt: skip


async def _explain_left_out(
    ctx: service.Context, conn: Any, stages: list[Trace], *, lead_id: uuid.UUID | None, ping_id: uuid.UUID | None
) -> None:
    """Add to the auction's stage the campaigns its index left out, each with its reason, so
    "why didn't my campaign get this lead" has an answer for a geo filter or a paused campaign
    too (``service.excluded_entries``)."""
    auction = next((t for t in stages if t.stage == "ping"), None)
    if auction is None:
        return
    subject = None
    if ping_id is not None:
        for table, is_call in ((pings, False), (calls, True)):
            row = (await conn.execute(sa.select(table.c.fields, table.c.vertical_id).where(table.c.id == ping_id))).first()
            if row is not None:
                subject = (row.fields, row.vertical_id, is_call)
                break
    if subject is None and lead_id is not None:
        row = (await conn.execute(sa.select(leads.c.fields, leads.c.vertical_id, leads.c.channel).where(leads.c.id == lead_id))).first()
        if row is not None:
            subject = (row.fields, row.vertical_id, row.channel == "call")
    if subject is None:
        return
    fields, vertical_id, is_call = subject
    slug = (await conn.execute(sa.select(verticals.c.slug).where(verticals.c.id == vertical_id))).scalar_one()
    market = await ctx.market.get(slug)
    if market is None:
        return
    seen = {e.campaign_id for e in auction.entries}
    left_out = service.excluded_entries(market, fields or {}, auction.created_at, calls=is_call)
    auction.entries.extend(e for e in left_out if e.campaign_id not in seen)


class TraceController(Controller):
    tags = ["traces"]
    guards = [allow(PartyKind.SUPPLIER, PartyKind.BUYER, PartyKind.TEAM)]

    @get("/v1/leads/{lead_id:uuid}/trace", summary="Why a lead went where it went")
    async def lead_trace(self, request: Request, lead_id: FromPath[uuid.UUID]) -> TraceView:
        return await _trace(request, lead_id=lead_id, ping_id=None)

    @get("/v1/pings/{ping_id:uuid}/trace", summary="Why a ping got the offer it got")
    async def ping_trace(self, request: Request, ping_id: FromPath[uuid.UUID]) -> TraceView:
        return await _trace(request, lead_id=None, ping_id=ping_id)


class ExplainController(Controller):
    path = "/v1/explain"
    tags = ["traces"]
    guards = [allow(PartyKind.SUPPLIER)]

    @post(
        status_code=200,
        summary="Dry run: every campaign's decision for a lead, selling nothing",
        description=(
            "Runs the lead's non-PII fields through every campaign of the vertical without "
            "pinging a buyer, holding capacity or selling. Operators see every campaign; a "
            "supplier sees the reasons and the payout it would be offered."
        ),
    )
    async def explain(self, request: Request, data: JSONBody[PingIn]) -> service.Explanation:
        principal: Principal = request.user
        supplier_id = None if principal.is_operator else principal.party_id
        result = await service.explain(auction_of(request), supplier_id, data)
        if not principal.is_operator:
            result.entries = [
                service.TraceEntry(campaign_id="", buyer_id="", reason=e.reason, bid_minor=e.bid_minor, payout_minor=e.payout_minor)
                for e in result.entries
            ]
            result.score = None  # how the exchange rates a lead and its source is its own
        return result
