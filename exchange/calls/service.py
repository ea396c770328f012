"""Calls against the database: the call ping (auction and ring plan), the connect (the lead),
the answer (a team's owner), the end (billed or not) and the sweep (expired, unreported).

The ``calls`` row is the one truth about a call: its status moves only by guarded UPDATEs
(``WHERE status = ...``), and what it holds (its campaign's cap windows and one concurrent
line) is written on it and given back by whichever step ends it, exactly once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import caps as cap_store
from exchange import metrics, reasons
from exchange.auction.bidding import _run_auction
from exchange.auction.context import (
    LEAD_SOLD,
    LEAD_UNSOLD,
    Context,
    _now,
    _vertical_and_market,
)
from exchange.auction.messages import TraceEntry
from exchange.auction.pinging import _summary, _write_trace, admit_ping, hold_offer, write_stage
from exchange.auction.posting import _contradictions, _merge_with_ping
from exchange.auction.selling import Refused, start_sale
from exchange.auth.parties import PartyKind, Principal
from exchange.calls import ringing, states
from exchange.calls.messages import AnswerIn, CallOffer, CallPingIn, CallView, ConnectIn, EndIn
from exchange.calls.ringing import CallDestination, RingPlan
from exchange.errors import ApiError, FieldProblem, forbidden, not_found, validation_error
from exchange.ids import new_id
from exchange.intake import normalize
from exchange.intake import service as intake
from exchange.intake import verticals as vertical_store
from exchange.intake.fields import FieldFormat, FieldSpec
from exchange.intake.messages import SourcedLeadIn
from exchange.intake.validate import Stage, ValidLead, validate_lead
from exchange.matching import CampaignRules
from exchange.scoring.store import score_lead
from exchange.store.db import Database
from exchange.store.tables import calls, lead_owners, leads, verticals

log = logging.getLogger(__name__)

CALL_CHANNEL = "call"
NO_CALL_CAMPAIGN = "no_call_campaign"  # nobody in the vertical buys calls, and no team takes them
NO_AGENT_FOR_CALL = "no_agent_for_call"  # the team that would take it has nobody to ring now
SWEEP_BATCH_MAX = 500  # calls ended per sweep step
_CALLER = FieldSpec(name="caller", format=FieldFormat.PHONE, pii=True)


# --- the call ping -------------------------------------------------------------------------------


async def ping(ctx: Context, supplier: Principal, data: CallPingIn) -> CallOffer:
    """Run the call's auction among the campaigns that buy calls; the winner's line (or, with
    no bid, the team whose route takes calls) is where it rings."""
    market, result, scored = await admit_ping(ctx, supplier, data)
    now = _now()
    call_id = new_id()
    auction = await _run_auction(
        ctx, market, supplier.party_id, result.fields, now, max_sells=1, test=data.test, ping_id=call_id,
        score=scored, calls=True,
    )  # fmt: skip
    ttl = dt.timedelta(seconds=ctx.settings.call_ttl_s)
    meta: dict[str, Any] = {"source": data.source, "sub_ids": msgspec.to_builtins(data.sub_ids) if data.sub_ids else None}
    facts = _Facts(call_id, result.fields, scored.score if scored else None, scored.priority if scored else None)
    async with ctx.db.write() as conn:
        offer, holds = await hold_offer(conn, market, auction, now, ttl, test=data.test)
        plan: RingPlan | None = None
        campaign_id = buyer_id = team_id = None
        price = payout = 0
        min_duration_s = 0
        if offer is not None:
            bid = offer.bids[0]
            winner = next(c for c in auction.ranked.candidates() if c.campaign_id == bid.campaign_id)
            terms = market.calls[bid.campaign_id]
            campaign_id, buyer_id = uuid.UUID(bid.campaign_id), uuid.UUID(winner.buyer_id)
            price, payout, min_duration_s = winner.bid.amount_minor, offer.payout_minor, terms.min_duration_s
            if terms.destination is not None:
                plan = ringing.to_address(terms.destination)
            else:  # a team's campaign without a line of its own: its agents ring
                team_id = buyer_id
                plan, decision = await _team_plan(conn, team_id, facts, now)
                meta["decision"] = decision
                if plan is None:  # nobody to ring: the bid cannot stand
                    await cap_store.release(conn, holds)
                    holds, offer = [], None
                    auction.entries[bid.campaign_id].reason = NO_AGENT_FOR_CALL
        if plan is None and not data.test:
            from exchange.teams import routing as team_routing  # teams import the auction

            team_id = await team_routing.route_team(conn, market.vertical_id, data.source, CALL_CHANNEL)
            if team_id is not None:
                campaign_id = buyer_id = None
                price = payout = 0
                plan, decision = await _team_plan(conn, team_id, facts, now)
                meta["decision"] = decision
        status = states.OFFERED if plan is not None else states.REJECTED
        expires_at = now + ringing.connect_window(plan, ttl)
        reasons = [] if plan is not None else (_summary(auction) or [NO_CALL_CAMPAIGN])
        if plan is None and team_id is not None:
            reasons = [NO_AGENT_FOR_CALL, *reasons]
        await conn.execute(
            calls.insert(),
            dict(
                id=call_id, supplier_id=supplier.party_id, vertical_id=market.vertical_id, status=status,
                test=data.test, campaign_id=campaign_id, buyer_id=buyer_id, team_id=team_id,
                price_minor=price, payout_minor=payout, currency=market.currency,
                min_duration_s=min_duration_s, ring=plan.ring if plan else ringing.SINGLE,
                ring_timeout_s=plan.ring_timeout_s if plan else None,
                destinations=msgspec.to_builtins(plan.destinations) if plan else [],
                holds=msgspec.to_builtins(holds), fields=dict(result.fields),
                meta={**meta, "reasons": reasons} if reasons else meta,
                created_at=now, expires_at=expires_at,
            ),
        )  # fmt: skip
        await _write_trace(conn, call_id, "ping", auction, now)
    metrics.AUCTIONS.labels(market.slug, "call_offered" if plan else "call_unmatched").inc()
    if plan is None:
        return CallOffer(status="rejected", call_id=call_id, payout_minor=0, currency=market.currency, reasons=reasons)
    return CallOffer(
        status="accepted", call_id=call_id, payout_minor=payout, currency=market.currency,
        expires_at=expires_at, min_duration_s=min_duration_s, ring=plan.ring,
        ring_timeout_s=plan.ring_timeout_s, destinations=list(plan.destinations),
    )  # fmt: skip


class _Facts(msgspec.Struct, frozen=True):
    """What team routing reads of a lead, for a call that has none yet (teams.routing.LeadFacts)."""

    id: uuid.UUID
    fields: dict[str, Any]
    score: int | None
    priority: str | None


async def _team_plan(
    conn: AsyncConnection, team_id: uuid.UUID, facts: _Facts, now: dt.datetime
) -> tuple[RingPlan | None, dict[str, Any]]:
    from exchange.teams import routing as team_routing

    plan, decision = await team_routing.call_plan(
        conn, team_id, team_routing.LeadFacts(facts.id, facts.fields, facts.score, facts.priority), now
    )
    return plan, msgspec.to_builtins(decision)


# --- reading -------------------------------------------------------------------------------------


async def _row(conn: AsyncConnection, call_id: uuid.UUID, *, lock: bool = False) -> Any:
    query = sa.select(calls).where(calls.c.id == call_id)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise not_found("call")
    return row


def _check_reporter(row: Any, principal: Principal) -> None:
    """The telephony reports for the supplier whose call it is (or an operator's integration)."""
    if not principal.is_operator and row.supplier_id != principal.party_id:
        raise forbidden("this call belongs to another supplier")


def _check_reader(row: Any, principal: Principal) -> None:
    if principal.is_operator or row.supplier_id == principal.party_id:
        return
    if principal.kind in (PartyKind.BUYER, PartyKind.TEAM) and principal.party_id in (row.buyer_id, row.team_id):
        return
    raise forbidden("not your call")


def _plan(row: Any) -> RingPlan:
    return RingPlan(
        ring=row.ring, destinations=tuple(msgspec.convert(row.destinations, list[CallDestination])),
        ring_timeout_s=row.ring_timeout_s,
    )  # fmt: skip


def view(row: Any, principal: Principal | None = None) -> CallView:
    """The call as ``principal`` may see it: the buyer's price is not the supplier's to know,
    nor the supplier's payout the buyer's (None: everything, for operators)."""
    operator = principal is None or principal.is_operator
    supplier = not operator and principal is not None and principal.party_id == row.supplier_id
    buyer = not operator and not supplier
    return CallView(
        call_id=row.id, status=row.status, vertical_id=row.vertical_id, test=row.test,
        payout_minor=None if buyer else row.payout_minor, currency=row.currency,
        min_duration_s=row.min_duration_s, ring=row.ring,
        destinations=msgspec.convert(row.destinations, list[CallDestination]),
        created_at=row.created_at, expires_at=row.expires_at,
        price_minor=None if supplier else row.price_minor,
        campaign_id=None if supplier else row.campaign_id, team_id=row.team_id,
        ring_timeout_s=row.ring_timeout_s, lead_id=row.lead_id, sale_id=row.sale_id,
        answered_by=row.answered_by, agent_id=row.agent_id, connected_at=row.connected_at,
        answered_at=row.answered_at, ended_at=row.ended_at, duration_s=row.duration_s,
        reason=row.reason,
    )  # fmt: skip


async def get(ctx: Context, principal: Principal, call_id: uuid.UUID) -> CallView:
    async with ctx.db.read() as conn:
        row = await _row(conn, call_id)
    _check_reader(row, principal)
    return view(row, principal)


async def list_calls(
    ctx: Context, principal: Principal, *, status: str | None, after: uuid.UUID | None, limit: int
) -> tuple[list[CallView], uuid.UUID | None]:
    """The principal's calls in id order (ids are time-ordered): a supplier's own, a buyer's or
    a team's own; an operator's all."""
    query = sa.select(calls).order_by(calls.c.id).limit(limit + 1)
    if not principal.is_operator:
        if principal.kind is PartyKind.SUPPLIER:
            query = query.where(calls.c.supplier_id == principal.party_id)
        else:
            query = query.where(sa.or_(calls.c.buyer_id == principal.party_id, calls.c.team_id == principal.party_id))
    if status is not None:
        query = query.where(calls.c.status == status)
    if after is not None:
        query = query.where(calls.c.id > after)
    async with ctx.db.read() as conn:
        rows = (await conn.execute(query)).all()
    page = rows[:limit]
    return [view(r, principal) for r in page], (page[-1].id if len(rows) > limit else None)


# --- the connect ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _call_fields(spec_json: bytes) -> list[FieldSpec]:
    """A call's lead asks for what a ping asks for: a caller is not a form. PII is welcome."""
    specs = msgspec.json.decode(spec_json, type=list[FieldSpec])
    return [msgspec.structs.replace(s, required_on_post=s.required_on_ping) for s in specs]


def _with_caller(vertical: vertical_store.Vertical, lead: ValidLead, caller: str) -> ValidLead:
    """The caller's number is the lead's phone: in the vertical's first phone field when the
    connect did not fill it, else kept apart as ``caller``."""
    phone_field = next((s.name for s in vertical.fields if s.format is FieldFormat.PHONE and s.pii), None)
    pii = dict(lead.pii)
    if phone_field is not None and phone_field not in pii:
        pii[phone_field] = caller
    elif phone_field is None:
        pii["caller"] = caller
    return msgspec.structs.replace(lead, pii=pii, phone=lead.phone or caller)


async def connect(ctx: Context, principal: Principal, call_id: uuid.UUID, data: ConnectIn) -> CallView:
    """The caller arrived: inside the call's expiry its lead is made (channel ``call``) and the
    plan stands; after it, 409 ``call_expired`` and nothing is stored."""
    now = _now()
    async with ctx.db.read() as conn:
        row = await _row(conn, call_id)
        _check_reporter(row, principal)
        slug = (await conn.execute(sa.select(verticals.c.slug).where(verticals.c.id == row.vertical_id))).scalar_one()
    if row.status != states.OFFERED or row.expires_at < now:
        return _not_connectable(row, principal, now)
    vertical, market = await _vertical_and_market(ctx, slug)
    try:
        caller = normalize.normalize(_CALLER, data.caller, text_max_chars=ctx.settings.text_max_chars)
    except normalize.Invalid as exc:
        raise validation_error([FieldProblem("caller", str(exc))]) from None
    meta = row.meta or {}
    merged = _merge_with_ping(vertical, row.fields, data.fields)
    lead_in = SourcedLeadIn(
        vertical=slug, fields=merged, source=meta.get("source"),
        sub_ids=msgspec.convert(meta["sub_ids"], intake.SubIds) if meta.get("sub_ids") else None,
        consent=data.consent, test=row.test, channel=CALL_CHANNEL,
    )  # fmt: skip
    specs = _call_fields(msgspec.json.encode(vertical.fields))
    result = validate_lead(specs, lead_in, Stage.POST, intake.limits_of(ctx.settings))
    if isinstance(result, list):
        raise validation_error(result)
    if problems := _contradictions(row.fields, result):
        raise ApiError(422, "contradicts_ping", "the connect changes fields sent on the call ping", fields=problems)
    result = _with_caller(vertical, result, caller)
    scored = await score_lead(market.scoring, ctx.market.history, market.vertical_id, result.fields, lead_in.source)
    lead_id = new_id()
    try:
        async with ctx.db.write() as conn:
            claimed = await conn.execute(
                calls.update()
                .where(calls.c.id == call_id, calls.c.status == states.OFFERED, calls.c.expires_at >= now)
                .values(status=states.CONNECTED, connected_at=now)
            )
            if claimed.rowcount != 1:  # expired or connected meanwhile: say which
                raise _Raced()
            await intake.claim_duplicates(conn, ctx.settings, vertical, result, lead_id, now, test=row.test)
            await intake.insert_lead(
                conn, lead_id=lead_id, vertical=vertical, supplier_id=row.supplier_id, lead_in=lead_in,
                lead=result, status=states.LEAD_CALLING, ping_id=call_id, now=now,
                score=scored.score if scored else None, priority=scored.priority if scored else None,
            )  # fmt: skip
            await conn.execute(calls.update().where(calls.c.id == call_id).values(lead_id=lead_id))
    except _Raced:
        async with ctx.db.read() as conn:
            return _not_connectable(await _row(conn, call_id), principal, now)
    except intake.Duplicate as dup:
        # The person called (or was sold) within the vertical's window: the call is not a new
        # lead and will not be billed. It ends here and gives back what it held.
        await _finish_unconnected(ctx.db, call_id, states.MISSED, reasons.DUPLICATE, now)
        raise intake.duplicate_error(vertical, dup.path) from None
    async with ctx.db.read() as conn:
        return view(await _row(conn, call_id), principal)


class _Raced(Exception):
    pass


def _not_connectable(row: Any, principal: Principal, now: dt.datetime) -> CallView:
    """A connect that cannot make a lead: the same connect again answers as the first did;
    otherwise a 409 that says why."""
    if row.status in (states.CONNECTED, *states.ENDED) and row.lead_id is not None and row.connected_at is not None:
        return view(row, principal)  # connected already (a retried report): idempotent
    if row.status == states.REJECTED:
        raise ApiError(409, "call_rejected", "nobody took this call: it cannot connect")
    if row.status in (states.OFFERED, states.EXPIRED) or row.expires_at < now:
        raise ApiError(
            409, "call_expired",
            f"this call's bid expired at {row.expires_at.isoformat()}: the caller must connect before it",
            details={"expires_at": row.expires_at.isoformat()},
        )  # fmt: skip
    raise ApiError(409, "call_ended", f"this call already ended ({row.status})")


async def _finish_unconnected(db: Database, call_id: uuid.UUID, status: str, reason: str, now: dt.datetime) -> None:
    """End an offered call that will never connect, giving back everything it held."""
    async with db.write() as conn:
        ended = (
            await conn.execute(
                calls.update()
                .where(calls.c.id == call_id, calls.c.status == states.OFFERED)
                .values(status=status, reason=reason, ended_at=now)
                .returning(calls.c.holds)
            )
        ).first()
        if ended is not None:
            await cap_store.release(conn, _holds(ended.holds))


def _holds(stored: Any) -> list[cap_store.Hold]:
    return msgspec.convert(stored or [], list[cap_store.Hold])


# --- the answer ----------------------------------------------------------------------------------


async def answer(ctx: Context, principal: Principal, call_id: uuid.UUID, data: AnswerIn) -> CallView:
    """Which destination picked up. On a team's call the first answer makes that agent the
    lead's owner; a later answer by another destination is refused and told who won."""
    now = _now()
    async with ctx.db.write() as conn:
        row = await _row(conn, call_id, lock=True)
        _check_reporter(row, principal)
        if row.status != states.CONNECTED:
            if row.answered_by is not None and row.answered_by == data.address:
                return view(row, principal)
            code = "call_not_connected" if row.status == states.OFFERED else "call_ended"
            raise ApiError(409, code, f"this call is {row.status}: nothing to answer")
        await _record_answer(conn, row, data.address, now, path="address")
        row = await _row(conn, call_id)
    return view(row, principal)


async def _record_answer(conn: AsyncConnection, row: Any, address: str | None, now: dt.datetime, *, path: str) -> None:
    plan = _plan(row)
    destination = ringing.answered(plan, address)
    if destination is None:
        reason = (
            "name the destination that answered: this call rang several"
            if address is None
            else "not a destination this call rang"
        )
        raise validation_error([FieldProblem(path, reason)])
    if row.answered_at is not None:
        if row.answered_by == destination.address:
            return  # the same answer reported again
        raise ApiError(
            409, "already_answered", f"{row.answered_by} answered this call first",
            details={"answered_by": row.answered_by, "agent_id": str(row.agent_id) if row.agent_id else None},
        )  # fmt: skip
    agent_id = uuid.UUID(destination.agent_id) if destination.agent_id else None
    taken = await conn.execute(
        calls.update()
        .where(calls.c.id == row.id, calls.c.answered_at.is_(None))
        .values(answered_at=now, answered_by=destination.address, agent_id=agent_id)
    )
    if taken.rowcount != 1:  # pragma: no cover - the row lock serialises answers
        raise ApiError(409, "already_answered", "another destination answered this call first")
    if row.team_id is not None and agent_id is not None and row.lead_id is not None:
        from exchange.teams import routing as team_routing

        await team_routing.take_call(conn, row.lead_id, row.team_id, agent_id, (row.meta or {}).get("decision"), now)


# --- the end -------------------------------------------------------------------------------------


async def end(ctx: Context, principal: Principal, call_id: uuid.UUID, data: EndIn) -> CallView:
    """The telephony reports the end and how long the call was answered: billed (a sale, its
    ledger entry and the supplier's payout) only from the campaign's minimum duration on."""
    now = _now()
    hand_over = False
    async with ctx.db.write() as conn:
        row = await _row(conn, call_id, lock=True)
        _check_reporter(row, principal)
        if row.status in states.ENDED:
            if row.duration_s == data.duration_s or row.status in (states.EXPIRED, states.UNREPORTED):
                return view(row, principal)  # the same end reported again, or ended by the sweep
            raise ApiError(409, "call_ended", f"this call already ended ({row.status}, {row.duration_s} s)")
        if row.status == states.REJECTED:
            raise ApiError(409, "call_rejected", "nobody took this call: it has nothing to end")
        connected = row.status == states.CONNECTED
        if connected and row.answered_at is None and data.duration_s > 0:
            await _record_answer(conn, row, data.answered_by, now, path="answered_by")
            row = await _row(conn, call_id)
        result = states.ending(
            connected=connected, answered=row.answered_at is not None, duration_s=data.duration_s,
            min_duration_s=row.min_duration_s, priced=row.campaign_id is not None and row.price_minor > 0,
            test=row.test,
        )  # fmt: skip
        sale_id = await _bill(conn, row, now) if result.bill else None
        holds = _holds(row.holds)
        await cap_store.release(conn, states.to_release(holds, billed=result.bill))
        await conn.execute(
            calls.update()
            .where(calls.c.id == call_id)
            .values(status=result.status, reason=result.reason, duration_s=data.duration_s, ended_at=now, sale_id=sale_id)
        )
        if row.lead_id is not None:
            await _trace_end(conn, row, sale_id, result.reason, data.duration_s, now)
            lead_status = LEAD_SOLD if sale_id is not None else LEAD_UNSOLD
            await conn.execute(
                leads.update().where(leads.c.id == row.lead_id, leads.c.status == states.LEAD_CALLING).values(status=lead_status)
            )
            owned = (await conn.execute(sa.select(lead_owners.c.lead_id).where(lead_owners.c.lead_id == row.lead_id))).first()
            hand_over = owned is None and not row.test
        row = await _row(conn, call_id)
    _count(row)
    if hand_over:  # a call nobody owns goes where unsold (or team-bought) leads go
        from exchange.teams import routing as team_routing

        await team_routing.hand_over(ctx.db, [row.lead_id])
    return view(row, principal)


async def _trace_end(
    conn: AsyncConnection, row: Any, sale_id: uuid.UUID | None, reason: str | None, duration_s: int, now: dt.datetime
) -> None:
    """The lead's trace gets the call's end as its stage ``call``: the winning campaign's
    ``sold``, or why the call was not billed (a team's route: the team, with the reason)."""
    if row.campaign_id is None and row.team_id is None:
        return
    entry = TraceEntry(
        campaign_id=str(row.campaign_id) if row.campaign_id else "", buyer_id=str(row.buyer_id or row.team_id),
        reason=reasons.SOLD if sale_id is not None else (reason or states.COMPLETED),
        bid_minor=row.price_minor if row.campaign_id else None,
        payout_minor=row.payout_minor if row.campaign_id else None,
        details={"duration_s": duration_s, "min_duration_s": row.min_duration_s},
    )  # fmt: skip
    await write_stage(conn, row.lead_id, "call", [entry], now)


async def _bill(conn: AsyncConnection, row: Any, now: dt.datetime) -> uuid.UUID:
    """The sale of a call that lasted: charged whatever the buyer's money says now (it had the
    call), on the capacity the call held since its bid."""
    campaign = CampaignRules(
        campaign_id=str(row.campaign_id), buyer_id=str(row.buyer_id), vertical=CALL_CHANNEL, timezone="UTC",
        calls=True,
    )  # fmt: skip
    started = await start_sale(
        conn, campaign=campaign, has_endpoint=False, lead_id=row.lead_id, supplier_id=row.supplier_id,
        price_minor=row.price_minor, payout_minor=row.payout_minor, currency=row.currency, held=True,
        max_sells=1, now=now, delivered=True,
    )  # fmt: skip
    if isinstance(started, Refused):  # pragma: no cover - held, delivered: nothing to refuse
        raise RuntimeError(f"the sale of a delivered call was refused: {started.reason}")
    return started[0].sale_id


def _count(row: Any) -> None:
    if row.test:
        return
    metrics.CALLS.labels(row.status).inc()


# --- the sweep -----------------------------------------------------------------------------------


async def sweep(db: Database, settings: Any, now: dt.datetime | None = None, limit: int = SWEEP_BATCH_MAX) -> int:
    """End the calls that can no longer end otherwise: offered past their expiry (never
    connected) and connected past ``call_max_s`` (their end never reported). Each gives back
    what it held; an unreported call's lead ends unsold and goes where unsold leads go."""
    now = now or _now()
    ended = 0
    async with db.write() as conn:
        due = (
            await conn.execute(
                sa.select(calls.c.id).where(calls.c.status == states.OFFERED, calls.c.expires_at < now)
                .order_by(calls.c.expires_at).limit(limit)
            )
        ).scalars().all()  # fmt: skip
        for call_id in due:
            gone = (
                await conn.execute(
                    calls.update()
                    .where(calls.c.id == call_id, calls.c.status == states.OFFERED, calls.c.expires_at < now)
                    .values(status=states.EXPIRED, reason=states.NOT_CONNECTED, ended_at=now)
                    .returning(calls.c.holds)
                )
            ).first()
            if gone is not None:
                await cap_store.release(conn, _holds(gone.holds))
                metrics.CALLS.labels(states.EXPIRED).inc()
                ended += 1
    cutoff = now - dt.timedelta(seconds=settings.call_max_s)
    unowned: list[uuid.UUID] = []
    async with db.write() as conn:
        stale = (
            await conn.execute(
                sa.select(calls.c.id).where(calls.c.status == states.CONNECTED, calls.c.connected_at < cutoff)
                .order_by(calls.c.connected_at).limit(limit)
            )
        ).scalars().all()  # fmt: skip
        for call_id in stale:
            gone = (
                await conn.execute(
                    calls.update()
                    .where(calls.c.id == call_id, calls.c.status == states.CONNECTED)
                    .values(status=states.UNREPORTED, reason=states.UNREPORTED_REASON, ended_at=now)
                    .returning(calls.c.holds, calls.c.lead_id, calls.c.test)
                )
            ).first()
            if gone is None:
                continue
            await cap_store.release(conn, _holds(gone.holds))
            await conn.execute(
                leads.update().where(leads.c.id == gone.lead_id, leads.c.status == states.LEAD_CALLING)
                .values(status=LEAD_UNSOLD)
            )  # fmt: skip
            owned = (await conn.execute(sa.select(lead_owners.c.lead_id).where(lead_owners.c.lead_id == gone.lead_id))).first()
            if owned is None and not gone.test:
                unowned.append(gone.lead_id)
            metrics.CALLS.labels(states.UNREPORTED).inc()
            log.warning("call end never reported; closed unbilled", extra={"call_id": str(call_id)})
            ended += 1
    if unowned:
        from exchange.teams import routing as team_routing

        await team_routing.hand_over(db, unowned)
    return ended
