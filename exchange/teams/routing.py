"""Routing a lead inside a team: choosing agents, starting a strategy, moving offers on after a
decline or an expiry, and where a lead goes when offers end (the fallback).

Every function here runs inside a write transaction whose caller already won the lead's
``lead_owners.version`` (``store.move``), so the plain ``set_owner`` writes below cannot race
another step of the same lead; the strategies' decisions are the pure layer's.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import metrics
from exchange.auction.context import LEAD_SOLD, LEAD_UNSOLD
from exchange.auth.parties import PartyKind
from exchange.errors import ApiError, not_found
from exchange.ids import new_id
from exchange.store.db import Database, dialect_insert, retrying
from exchange.store.tables import (
    lead_owners,
    leads,
    parties,
    sales,
    team_routes,
)
from exchange.teams import parallel, reasons, round_robin, sequential, store
from exchange.teams.agents import (
    LeadRequirements,
    eligible_ids,
    evaluate_team,
)
from exchange.teams.messages import (
    Ownership,
    TeamConfig,
    TeamConfigIn,
)
from exchange.teams.offers import (
    Fallback,
    FallbackKind,
    FallbackPolicy,
    IllegalTransition,
    Offer,
    OfferMode,
    OfferStatus,
)
from exchange.teams.store import Member

log = logging.getLogger(__name__)

QUEUED, OFFERED, OWNED, FALLBACK = "queued", "offered", "owned", "fallback"
CLOSED = "closed"  # the owner closed it with an outcome (``reason``): routing has ended


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _default_config(team_id: uuid.UUID, now: dt.datetime) -> TeamConfig:
    return TeamConfig(team_id=team_id, updated_at=now, **msgspec.structs.asdict(TeamConfigIn()))


async def team_config(conn: AsyncConnection, team_id: uuid.UUID, now: dt.datetime) -> TeamConfig:
    return await store.config(conn, team_id) or _default_config(team_id, now)


# -- choosing agents ------------------------------------------------------------------------------


def lead_requirements(cfg: TeamConfig, fields: dict[str, Any] | None) -> LeadRequirements:
    wanted: dict[str, str] = {}
    for kind, field in (cfg.skill_fields or {}).items():
        value = (fields or {}).get(field)
        if value is not None:
            wanted[kind] = str(value)
    return LeadRequirements(**wanted)


def rank_agents(team: list[Member], reqs: LeadRequirements, now: dt.datetime) -> list[str]:
    """Eligible agents, best first by round-robin standing (excluded ones are logged)."""
    decisions = evaluate_team(
        [m.agent for m in team], {m.agent.id: m.load for m in team}, reqs, now
    )
    for d in decisions:
        if not d.eligible:
            log.debug("agent not eligible", extra={"agent_id": d.agent_id, "reason": d.reason})
    ok = eligible_ids(decisions)
    by_id = {m.agent.id: m for m in team if m.agent.id in ok}
    return list(_order(list(by_id.values()), now))


def _order(team: list[Member], now: dt.datetime) -> tuple[str, ...]:
    """Round-robin order by each agent's standing in today's window (``store.standing``)."""
    standings = [store.standing(m, now) for m in team]
    return round_robin.choose(standings, {m.agent.id: m.agent.weight for m in team})


async def _assign_round_robin(
    conn: AsyncConnection, team_id: uuid.UUID, reqs: LeadRequirements, now: dt.datetime
) -> uuid.UUID | None:
    """The best eligible agent, its standing bumped by compare-and-set; on a lost race re-read
    and plan again (``round_robin`` docstring). None: nobody eligible (or too much contention)."""
    for _ in range(store.CAS_ATTEMPTS):
        team = await store.members(conn, team_id)
        ranked = rank_agents(team, reqs, now)
        if not ranked:
            return None
        # Routers at once all rank the same agent first. Each takes the first agent in that
        # order that no other router is assigning right now (the row lock says so), instead of
        # queueing behind it and losing its compare-and-set when the first commits.
        first = await store.lock_first_free(conn, ranked) or ranked[0]
        chosen = next(m for m in team if m.agent.id == first)
        if await store.take(conn, chosen, now):
            return chosen.row.agent_id
    return None


def fallback_policy(cfg: TeamConfig, team_id: uuid.UUID) -> FallbackPolicy:
    return cfg.fallback or FallbackPolicy(kind=FallbackKind.QUEUE, target=str(team_id))


# -- routing --------------------------------------------------------------------------------------


async def route_for(conn: AsyncConnection, lead_id: uuid.UUID) -> tuple[Any, uuid.UUID] | None:
    """The lead and its team: the route for its (vertical, source), else the vertical's
    catch-all; None when no team takes it (or it is not an unsold real lead)."""
    lead = (await conn.execute(sa.select(leads).where(leads.c.id == lead_id))).first()
    if lead is None or lead.test:
        return None
    if lead.status == LEAD_SOLD:
        # A team that bought the lead in the auction (its campaign's internal value won) works
        # it: the lead goes to that team, whatever the routes say.
        team_id = (
            await conn.execute(
                sa.select(sales.c.buyer_id)
                .join(parties, parties.c.id == sales.c.buyer_id)
                .where(
                    sales.c.lead_id == lead_id,
                    sales.c.status == "delivered",
                    parties.c.kind == PartyKind.TEAM.value,
                )
                .order_by(sales.c.created_at)
                .limit(1)
            )
        ).scalar_one_or_none()
        return (lead, team_id) if team_id is not None else None
    if lead.status != LEAD_UNSOLD:
        return None
    rows = (
        await conn.execute(
            sa.select(team_routes.c.source, team_routes.c.team_id).where(
                team_routes.c.vertical_id == lead.vertical_id,
                sa.or_(team_routes.c.source.is_(None), team_routes.c.source == lead.source),
            )
        )
    ).all()
    best = sorted(rows, key=lambda r: r.source is None)  # the source-specific route first
    return (lead, best[0].team_id) if best else None


async def has_route(conn: AsyncConnection, lead_id: uuid.UUID) -> bool:
    return await route_for(conn, lead_id) is not None


async def hand_over(db: Database, lead_ids: list[uuid.UUID]) -> None:
    """Leads that just ended unsold: ask a worker to route those a team takes. A lost message
    is harmless: ``sweep`` routes unsold leads that have a route and no owner row."""
    from exchange.worker import actors

    for lead_id in lead_ids:
        async with db.read() as conn:
            if not await has_route(conn, lead_id):
                continue
        try:
            if actors.route_to_team is not None:
                actors.route_to_team.send(str(lead_id))
        except Exception:  # the broker is down: the sweeper will route it
            log.warning("could not enqueue route_to_team; the sweeper will", exc_info=True)


async def route_lead(
    db: Database, lead_id: uuid.UUID, now: dt.datetime | None = None
) -> Ownership | None:
    """Give an unsold lead to its team (idempotent: a routed lead is left as it is). Routers
    running at once may deadlock on agents' rows; the database picks one to retry."""
    now = now or utcnow()
    return await retrying(lambda: _route_lead(db, lead_id, now))


async def _route_lead(db: Database, lead_id: uuid.UUID, now: dt.datetime) -> Ownership | None:
    async with db.write() as conn:
        found = await route_for(conn, lead_id)
        if found is None:
            return None
        lead, team_id = found
        inserted = await conn.execute(
            dialect_insert(conn, lead_owners)
            .values(
                lead_id=lead_id, team_id=team_id, status=QUEUED, version=0, past_owners=[],
                queued_at=now, reassign_count=0, updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(lead_owners.c.lead_id)
        )  # fmt: skip
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        if inserted.first() is not None:
            await start(conn, await store.owner_row(conn, lead_id), lead.fields, now)
        return ownership_of(await store.owner_row(conn, lead_id))


async def start(conn: AsyncConnection, row: Any, fields: Any, now: dt.datetime) -> str:
    """Apply the team's strategy to a queued lead; the status it ends in."""
    cfg = await team_config(conn, row.team_id, now)
    reqs = lead_requirements(cfg, fields)
    if not await store.move(conn, row, now):  # someone else is routing this lead
        return row.status
    if cfg.strategy == "round_robin":
        agent_id = await _assign_round_robin(conn, row.team_id, reqs, now)
        if agent_id is None:
            return await queue_lead(conn, row.lead_id, reasons.NOBODY_ELIGIBLE, now)
        await own(conn, row.lead_id, agent_id, now)
        return OWNED
    team = await store.members(conn, row.team_id)
    ranked = rank_agents(team, reqs, now)
    timeout = dt.timedelta(seconds=cfg.offer_timeout_s)
    policy = fallback_policy(cfg, row.team_id)
    lead = str(row.lead_id)
    made: tuple[Offer, ...]
    candidates = None
    if cfg.strategy == "parallel":
        step = parallel.offers(lead, ranked, now, timeout, policy, k=cfg.parallel_k)
        made = step.action if isinstance(step.action, tuple) else ()
    else:
        candidates = list(_order([m for m in team if m.agent.active], now))
        first = sequential.start(lead, candidates, now, timeout, cfg.max_rounds, policy, ranked)
        made = (first.action,) if isinstance(first.action, Offer) else ()
    if not made:  # nobody eligible: wait in the queue, whatever the fallback (rounds can't help)
        return await queue_lead(conn, row.lead_id, reasons.NOBODY_ELIGIBLE, now)
    for offer in made:
        await store.insert_offer(conn, offer, row.team_id, new_id())
    await set_owner(
        conn, row.lead_id, now, status=OFFERED, agent_id=None, candidates=candidates, reason=None
    )
    return OFFERED


async def set_owner(
    conn: AsyncConnection, lead_id: uuid.UUID, now: dt.datetime, **values: Any
) -> None:
    """A write after ``store.move`` won the lead's version in this transaction."""
    await conn.execute(
        lead_owners.update()
        .where(lead_owners.c.lead_id == lead_id)
        .values(updated_at=now, **values)
    )


async def queue_lead(
    conn: AsyncConnection, lead_id: uuid.UUID, reason: str, now: dt.datetime
) -> str:
    await set_owner(conn, lead_id, now, status=QUEUED, agent_id=None, reason=reason)
    log.info("lead queued", extra={"lead_id": str(lead_id), "reason": reason})
    return QUEUED


async def own(
    conn: AsyncConnection, lead_id: uuid.UUID, agent_id: uuid.UUID, now: dt.datetime
) -> None:
    await set_owner(
        conn, lead_id, now, status=OWNED, agent_id=agent_id, owned_since=now, reason=None,
        first_contact_at=None,
    )  # fmt: skip
    metrics.TEAM_ASSIGNMENTS.labels("assigned").inc()
    log.info("lead owned", extra={"lead_id": str(lead_id), "agent_id": str(agent_id)})


async def fall(
    conn: AsyncConnection, lead_id: uuid.UUID, fallback: Fallback, now: dt.datetime
) -> None:
    """Where a lead goes when its strategy ended without an owner (the team's policy)."""
    log.info("lead fell back", extra={"lead_id": str(lead_id), "reason": fallback.reason,
                                      "kind": fallback.kind.value, "target": fallback.target})  # fmt: skip
    if fallback.kind is FallbackKind.PERSON:
        person = uuid.UUID(fallback.target)
        if await store.take_fresh(conn, person, now) is None:
            await own(conn, lead_id, person, now)
            return
    elif fallback.kind is FallbackKind.TEAM:
        await set_owner(conn, lead_id, now, team_id=uuid.UUID(fallback.target), candidates=None)
    await queue_lead(conn, lead_id, fallback.reason, now)


def ownership_of(row: Any) -> Ownership:
    return Ownership(
        lead_id=row.lead_id, team_id=row.team_id, agent_id=row.agent_id, status=row.status,
        reason=row.reason, owned_since=row.owned_since, first_contact_at=row.first_contact_at,
        reassign_count=row.reassign_count,
    )  # fmt: skip


async def ownership(conn: AsyncConnection, lead_id: uuid.UUID) -> Ownership:
    row = await store.owner_row(conn, lead_id)
    if row is None:
        raise not_found("routed lead")
    return ownership_of(row)


def seq_state(row: Any, cfg: TeamConfig, rows: list[Any]) -> sequential.SequentialState:
    made = tuple(store.pure_offer(o) for o in rows)
    return sequential.SequentialState(
        lead_id=str(row.lead_id), candidates=tuple(row.candidates or ()),
        timeout=dt.timedelta(seconds=cfg.offer_timeout_s), max_rounds=cfg.max_rounds,
        fallback=fallback_policy(cfg, row.team_id), round=max((o.round for o in made), default=1),
        offers=made, owner=str(row.agent_id) if row.status == OWNED else None,
    )  # fmt: skip


def par_state(row: Any, cfg: TeamConfig, rows: list[Any]) -> parallel.ParallelState:
    made = tuple(store.pure_offer(o) for o in rows)
    return parallel.ParallelState(
        lead_id=str(row.lead_id), offers=made, expires_at=max(o.expires_at for o in made),
        fallback=fallback_policy(cfg, row.team_id),
        winner=str(row.agent_id) if row.status == OWNED else None,
    )  # fmt: skip


def conflict(reason: str, row: Any) -> ApiError:
    """The 409 of a refused accept or a lost claim: why, and where the lead stands now."""
    return ApiError(
        409, reason, reasons.REASONS.get(reason, reason),
        details={"lead_id": str(row.lead_id), "lead_status": row.status,
                 "owner_id": str(row.agent_id) if row.agent_id else None},
    )  # fmt: skip


async def advance(
    conn: AsyncConnection, row: Any, now: dt.datetime, *, declined_by: str | None = None
) -> bool:
    """A decline (``declined_by``) or the timer's expiry moved the lead's offers on; the caller
    won the lead's version. False when nothing was due (an expiry ahead of its time)."""
    cfg = await team_config(conn, row.team_id, now)
    rows = await store.lead_offers(conn, row.lead_id)
    pending = [o for o in rows if o.status == OfferStatus.PENDING.value]
    if not pending:
        return False
    try:
        if pending[0].mode == OfferMode.PARALLEL.value:
            state = par_state(row, cfg, rows)
            if declined_by is None:
                step = parallel.on_expire(state, now)
            else:
                step = parallel.decline(state, declined_by, now)
        else:
            lead = (
                await conn.execute(sa.select(leads.c.fields).where(leads.c.id == row.lead_id))
            ).scalar_one()
            eligible = rank_agents(
                await store.members(conn, row.team_id), lead_requirements(cfg, lead), now
            )
            current = pending[-1]
            state = seq_state(row, cfg, rows)
            if declined_by is None:
                step = sequential.on_expire(state, str(current.agent_id), now, eligible)
            else:
                step = sequential.on_decline(state, declined_by, now, eligible)
    except IllegalTransition as exc:
        if exc.reason == reasons.OFFER_NOT_EXPIRED:
            return False
        raise conflict(exc.reason, row) from None
    # Persist what changed: offers that left pending, new offers, and where the lead went.
    by_key = {(o.agent_id, o.round): o for o in rows}
    for after in step.state.offers:
        before = by_key.get((uuid.UUID(after.agent_id), after.round))
        if before is None:
            await store.insert_offer(conn, after, row.team_id, new_id())
        elif before.status == OfferStatus.PENDING.value and not after.pending:
            await store.close_offer(conn, before.id, after.status, now)
    if isinstance(step.action, Fallback):
        await fall(conn, row.lead_id, step.action, now)
    return True
