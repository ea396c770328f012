"""The teams' durable timers, run by the ``sweep_offers`` actor: expire offers past their time,
route unsold leads whose message was lost, drain team queues, reassign past the first-contact SLA.

Nothing waits on a client or on an in-memory timer: each pass reads what is due from the
database, and each lead moves in its own short transaction guarded by its version.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.context import LEAD_UNSOLD
from exchange.channels.names import channel_of
from exchange.store.db import Database, retrying
from exchange.store.tables import (
    lead_owners,
    leads,
    offers,
    team_configs,
    team_routes,
)
from exchange.teams import queue as team_queue
from exchange.teams import reasons, sla, store
from exchange.teams.agents import LeadRequirements
from exchange.teams.messages import (
    SweepResult,
)
from exchange.teams.offers import (
    Fallback,
    OfferStatus,
)
from exchange.teams.routing import (
    FALLBACK,
    OFFERED,
    OWNED,
    QUEUED,
    advance,
    fall,
    fallback_policy,
    lead_facts,
    lead_requirements,
    own,
    queue_lead,
    rank_agents,
    route_lead,
    set_owner,
    start,
    team_config,
    utcnow,
)

log = logging.getLogger(__name__)

SWEEP_BATCH = 200
# The sweeper also routes unsold leads whose route_to_team message was lost, if they are younger
# than this (older unsold leads are not pulled in when a route is added later).
ROUTE_LOOKBACK = dt.timedelta(days=1)
# An agent's heartbeat or "available" drains at most this many of its team's queued leads at
# once (the rest wait for the sweeper or the next presence call): bounded work per request.
PRESENCE_DRAIN = 20


# -- the sweeper: durable timers ------------------------------------------------------------------


async def sweep(
    db: Database, now: dt.datetime | None = None, batch: int = SWEEP_BATCH
) -> SweepResult:
    """Expire offers past their time, route unsold leads whose message was lost, drain queues
    and reassign leads past their first-contact SLA. Each lead in its own short transaction."""
    now = now or utcnow()
    result = SweepResult()
    async with db.read() as conn:
        due = (
            (
                await conn.execute(
                    sa.select(offers.c.lead_id)
                    .where(offers.c.status == OfferStatus.PENDING.value, offers.c.expires_at <= now)
                    .group_by(offers.c.lead_id)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        missed = (
            await conn.execute(
                sa.select(leads.c.id)
                .join(team_routes, sa.and_(
                    team_routes.c.vertical_id == leads.c.vertical_id,
                    sa.or_(team_routes.c.source.is_(None), team_routes.c.source == leads.c.source),
                    # A route for another channel takes no lead of this one: without this, such
                    # leads would be picked (and routed nowhere) at every sweep, taking the batch.
                    sa.or_(team_routes.c.channel.is_(None),
                           team_routes.c.channel == channel_of(leads.c.channel))))
                .outerjoin(lead_owners, lead_owners.c.lead_id == leads.c.id)
                .where(leads.c.status == LEAD_UNSOLD, leads.c.test.is_(False),
                       leads.c.created_at >= now - ROUTE_LOOKBACK, lead_owners.c.lead_id.is_(None))
                .group_by(leads.c.id)
                .limit(batch)
            )
        ).scalars().all()  # fmt: skip
    for lead_id in missed:
        await route_lead(db, lead_id, now)
    # Drain before expiring: a lead that falls back to its queue now is offered again at the
    # next sweep at the earliest, not to the same agents in the same instant.
    await _drain(db, now, batch, result)
    for lead_id in due:
        async with db.write() as conn:
            row = await store.owner_row(conn, lead_id)
            if row is not None and row.status == OFFERED and await store.move(conn, row, now):
                result.expired += await advance(conn, row, now)
    await _enforce_sla(db, now, batch, result)
    return result


async def drain_team(
    db: Database, team_id: uuid.UUID, now: dt.datetime | None = None, limit: int | None = None
) -> SweepResult:
    """Drain one team's queue now (an agent just came online or available), at most ``limit``
    leads, oldest first: the same steps as the sweeper's drain, in their own transactions."""
    result = SweepResult()
    await _drain(db, now or utcnow(), limit or PRESENCE_DRAIN, result, team_id=team_id)
    return result


async def _drain(
    db: Database,
    now: dt.datetime,
    batch: int,
    result: SweepResult,
    team_id: uuid.UUID | None = None,
) -> None:
    """Queued leads, oldest first (``queue.ordered``): too old ones fall out, the rest are
    routed again now that agents may have come online or freed capacity. ``team_id``: only
    that team's queue."""
    query = (
        sa.select(lead_owners.c.lead_id, lead_owners.c.queued_at)
        .where(lead_owners.c.status == QUEUED)
        .order_by(lead_owners.c.queued_at)
        .limit(batch)
    )
    if team_id is not None:
        query = query.where(lead_owners.c.team_id == team_id)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    waiting = team_queue.ordered(
        team_queue.WaitingLead(lead_id=str(r.lead_id), created_at=r.queued_at) for r in rows
    )
    # Whether a team has any agent eligible for a lead without requirements: when it has none,
    # none of its queued leads can be placed, so they are not rewritten on every sweep.
    anyone: dict[uuid.UUID, bool] = {}
    for lead in waiting:
        # Routers working at once may deadlock on agents' rows: the loser runs again.
        await retrying(lambda lead=lead: _drain_one(db, lead, now, anyone, result))


async def _drain_one(
    db: Database, lead: Any, now: dt.datetime, anyone: dict[uuid.UUID, bool], result: SweepResult
) -> None:
    lead_id = uuid.UUID(lead.lead_id)
    async with db.write() as conn:
        row = await store.owner_row(conn, lead_id)
        if row is None or row.status != QUEUED:
            return
        cfg = await team_config(conn, row.team_id, now)
        if team_queue.too_old(lead, now, dt.timedelta(seconds=cfg.queue_max_age_s)):
            if await store.move(conn, row, now, status=FALLBACK, reason=reasons.QUEUE_MAX_AGE):
                result.too_old += 1
            return
        if row.team_id not in anyone:
            team = await store.members(conn, row.team_id)
            anyone[row.team_id] = bool(rank_agents(team, LeadRequirements(), now))
        if not anyone[row.team_id]:
            return
        if await start(conn, row, await lead_facts(conn, lead_id), now) != QUEUED:
            result.drained += 1


async def _enforce_sla(db: Database, now: dt.datetime, batch: int, result: SweepResult) -> None:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(lead_owners.c.lead_id, lead_owners.c.owned_since, lead_owners.c.agent_id,
                          team_configs.c.sla_minutes, team_configs.c.skill_fields)
                .join(team_configs, team_configs.c.team_id == lead_owners.c.team_id)
                .where(lead_owners.c.status == OWNED, lead_owners.c.first_contact_at.is_(None),
                       team_configs.c.sla_minutes.is_not(None))
                .order_by(lead_owners.c.owned_since)
                .limit(batch)
            )
        ).all()  # fmt: skip
    for r in rows:
        hours = None
        if (r.skill_fields or {}).get(store.SLA_WORKING_HOURS_KEY):  # the team's sla_working_hours
            async with db.read() as conn:
                owner = await store.member(conn, r.agent_id)
            hours = owner.agent.working_hours if owner is not None else None
        if not sla.breached(r.owned_since, None, now, r.sla_minutes, hours):
            continue
        async with db.write() as conn:
            row = await store.owner_row(conn, r.lead_id)
            if (
                row.status != OWNED
                or row.first_contact_at is not None
                or not await store.move(conn, row, now)
            ):
                continue
            result.reassigned += await _reassign(conn, row, now)


async def _reassign(conn: AsyncConnection, row: Any, now: dt.datetime) -> bool:
    cfg = await team_config(conn, row.team_id, now)
    fields = (
        await conn.execute(sa.select(leads.c.fields).where(leads.c.id == row.lead_id))
    ).scalar_one()
    earlier = [*(row.past_owners or []), str(row.agent_id)]
    ranked = rank_agents(
        await store.members(conn, row.team_id), lead_requirements(cfg, fields), now
    )
    decision = sla.next_owner(
        ranked, earlier, row.reassign_count, cfg.max_reassigns, fallback_policy(cfg, row.team_id)
    )
    await store.release(conn, row.agent_id)
    await set_owner(conn, row.lead_id, now, past_owners=earlier, agent_id=None)
    log.info(
        "first-contact SLA breached",
        extra={"lead_id": str(row.lead_id), "agent_id": str(row.agent_id)},
    )
    if isinstance(decision, Fallback):
        await fall(conn, row.lead_id, decision, now)
        return True
    for agent_id in decision.candidates:
        if await store.take_fresh(conn, uuid.UUID(agent_id), now) is None:
            # The count first: ``own`` tells the new owner of a "reassigned" lead by it.
            await set_owner(conn, row.lead_id, now, reassign_count=decision.reassign_count)
            await own(conn, row.lead_id, uuid.UUID(agent_id), now)
            return True
    await queue_lead(conn, row.lead_id, reasons.NOBODY_ELIGIBLE, now)
    return True
