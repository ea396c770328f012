"""Reads and compare-and-set writes of team state; the service decides with the pure layer.

Every counter write is guarded by the values it was computed from, so two processes never both
spend the same round-robin standing or the last unit of an agent's cap (Property 3): a zero
rowcount means "someone else moved first; read again".
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import metrics
from exchange.auth.parties import PartyKind
from exchange.matching.schedule import Schedule
from exchange.store.tables import agent_profiles, lead_owners, offers, parties, team_configs
from exchange.teams import agents as agent_rules
from exchange.teams import round_robin
from exchange.teams.agents import Agent, AgentLoad, ManualStatus, Skills
from exchange.teams.messages import Profile, TeamConfig, TeamRouting
from exchange.teams.offers import FallbackPolicy, Offer, OfferMode, OfferStatus

# ``team_configs.skill_fields`` (JSON) also carries the ``sla_working_hours`` flag under this key,
# so the flag needed no migration; ``config`` takes it out again.
SLA_WORKING_HOURS_KEY = "_sla_working_hours"

# A compare-and-set that keeps losing to other writers is retried this often, then the caller
# queues the lead (the sweeper tries again): bounded work per request.
CAS_ATTEMPTS = 10
PROFILE_JSON_CACHE_MAX = 4096  # distinct working-hours and skills texts kept decoded


class Member(msgspec.Struct, kw_only=True):
    """An agent of a team as the pure layer sees it, and the row its counters were read from."""

    agent: Agent
    load: AgentLoad
    row: Any


@functools.lru_cache(maxsize=PROFILE_JSON_CACHE_MAX)
def _schedule(text: str) -> Schedule | None:
    value = msgspec.json.decode(text)
    return msgspec.convert(value, Schedule) if value else None


@functools.lru_cache(maxsize=PROFILE_JSON_CACHE_MAX)
def _skills(text: str) -> Skills:
    return msgspec.convert(msgspec.json.decode(text), Skills)


def _agent(row: Any) -> Agent:
    # Working hours and skills come as JSON text and are decoded once per distinct text:
    # routing reads every agent of the team for each lead, and they rarely change.
    hours = _schedule(row.working_hours) if row.working_hours else None
    return Agent(
        id=str(row.agent_id),
        team_id=str(row.parent_id),
        timezone=row.timezone,
        active=row.active,
        manual_status=ManualStatus(row.manual_status),
        last_heartbeat_at=row.last_heartbeat_at,
        heartbeat_ttl=None
        if row.heartbeat_ttl_s is None
        else dt.timedelta(seconds=row.heartbeat_ttl_s),
        working_hours=hours,
        skills=_skills(row.skills),
        weight=row.weight,
        daily_cap=row.daily_cap,
        concurrent_cap=row.concurrent_cap,
    )


def _load(row: Any) -> AgentLoad:
    return AgentLoad(
        served_today=row.served_today,
        served_on=row.served_on,
        open_leads=row.open_leads,
        last_assigned_at=row.last_assigned_at,
        served_in_window=row.served_in_window,
    )


def _members_query() -> sa.Select:
    columns = [c for c in agent_profiles.c if c.name not in ("working_hours", "skills")]
    return sa.select(
        *columns,
        sa.cast(agent_profiles.c.working_hours, sa.Text).label("working_hours"),
        sa.cast(agent_profiles.c.skills, sa.Text).label("skills"),
        parties.c.parent_id,
        parties.c.active,
    ).join(parties, parties.c.id == agent_profiles.c.agent_id)


def member_of(row: Any) -> Member:
    return Member(agent=_agent(row), load=_load(row), row=row)


async def members(conn: AsyncConnection, team_id: uuid.UUID) -> list[Member]:
    """The team's agents that have a routing profile (an agent without one is never routed)."""
    rows = await conn.execute(
        _members_query()
        .where(parties.c.parent_id == team_id, parties.c.kind == PartyKind.AGENT.value)
        .order_by(agent_profiles.c.agent_id)
    )
    return [member_of(r) for r in rows]


async def member(conn: AsyncConnection, agent_id: uuid.UUID) -> Member | None:
    row = (
        await conn.execute(_members_query().where(agent_profiles.c.agent_id == agent_id))
    ).first()
    return member_of(row) if row else None


def window_of(m: Member, now: dt.datetime) -> str:
    """The round-robin window the agent's standing counts in now: its local day."""
    return f"day:{agent_rules.local_day(m.agent, now).isoformat()}"


def standing(m: Member, now: dt.datetime) -> round_robin.Standing:
    """The agent's round-robin standing in today's window (``round_robin.roll``): a count kept
    on another local day (``served_on``) starts again at 0, so no job resets it."""
    kept_on = m.load.served_on  # None: never counted a day yet, so the count is today's
    today = window_of(m, now)
    kept = today if kept_on is None else f"day:{kept_on.isoformat()}"
    return round_robin.roll(round_robin.standing_of(m.agent.id, m.load, kept), today)


def profile_of(m: Member, now: dt.datetime) -> Profile:
    a, row = m.agent, m.row
    return Profile(
        agent_id=row.agent_id,
        team_id=row.parent_id,
        timezone=a.timezone,
        working_hours=a.working_hours,
        skills=a.skills,
        weight=a.weight,
        tier=row.tier,
        daily_cap=a.daily_cap,
        concurrent_cap=a.concurrent_cap,
        heartbeat_ttl_s=row.heartbeat_ttl_s,
        manual_status=a.manual_status,
        last_heartbeat_at=a.last_heartbeat_at,
        online=agent_rules.is_online(a, now),
        served_today=agent_rules.served_today(a, m.load, now),
        open_leads=row.open_leads,
        served_in_window=standing(m, now).served,
        last_assigned_at=row.last_assigned_at,
        email=row.email,
        call_destination=row.call_destination,
    )


def cap_reason(m: Member, now: dt.datetime) -> str | None:
    """Why the agent cannot take one more lead now (its daily or concurrent cap), if it cannot."""
    from exchange.teams import reasons

    a, load = m.agent, m.load
    if a.daily_cap is not None and agent_rules.served_today(a, load, now) >= a.daily_cap:
        return reasons.DAILY_CAP_REACHED
    if a.concurrent_cap is not None and load.open_leads >= a.concurrent_cap:
        return reasons.CONCURRENT_CAP_REACHED
    return None


async def take(conn: AsyncConnection, m: Member, now: dt.datetime) -> bool:
    """Count one more lead for the agent: compare-and-set on every counter ``m`` was read with
    (round-robin standing, today's count and its day, open leads). False: someone else moved."""
    c = agent_profiles.c
    row = m.row
    result = await conn.execute(
        agent_profiles.update()
        .where(
            c.agent_id == row.agent_id,
            c.served_in_window == row.served_in_window,
            c.last_assigned_at.is_not_distinct_from(row.last_assigned_at),
            c.served_today == row.served_today,
            c.served_on.is_not_distinct_from(row.served_on),
            c.open_leads == row.open_leads,
        )
        .values(
            served_in_window=standing(m, now).served + 1,
            last_assigned_at=now,
            served_today=agent_rules.served_today(m.agent, m.load, now) + 1,
            served_on=agent_rules.local_day(m.agent, now),
            open_leads=row.open_leads + 1,
        )
    )
    return result.rowcount == 1


_FIRST_FREE_PG = sa.text(
    "SELECT agent_id::text FROM agent_profiles WHERE agent_id = ANY(CAST(string_to_array(:ids, ',') AS uuid[]))"
    " ORDER BY array_position(string_to_array(:ids, ','), agent_id::text) LIMIT 1 FOR UPDATE SKIP LOCKED"
)


async def lock_first_free(conn: AsyncConnection, agent_ids: list[str]) -> str | None:
    """Lock the first of ``agent_ids`` (in that order) whose row no other transaction holds;
    None when all are held, or on SQLite (one writer at a time: nobody else holds one).
    PostgreSQL only: ``FOR UPDATE SKIP LOCKED``."""
    if conn.dialect.name != "postgresql" or not agent_ids:
        return None
    return (await conn.execute(_FIRST_FREE_PG, {"ids": ",".join(agent_ids)})).scalar()


async def take_fresh(conn: AsyncConnection, agent_id: uuid.UUID, now: dt.datetime) -> str | None:
    """``take`` from a fresh read, checking the caps first; the reason when it cannot."""
    from exchange.teams import reasons

    for _ in range(CAS_ATTEMPTS):
        m = await member(conn, agent_id)
        if m is None:
            return reasons.AGENT_INACTIVE
        if (reason := cap_reason(m, now)) is not None:
            return reason
        if await take(conn, m, now):
            return None
    return reasons.CONCURRENT_CAP_REACHED


async def release(conn: AsyncConnection, agent_id: uuid.UUID) -> None:
    """One open lead fewer (reassigned away or closed): a relative update, never below zero."""
    c = agent_profiles.c
    await conn.execute(
        agent_profiles.update()
        .where(c.agent_id == agent_id, c.open_leads > 0)
        .values(open_leads=c.open_leads - 1)
    )


async def config(conn: AsyncConnection, team_id: uuid.UUID) -> TeamConfig | None:
    row = (
        await conn.execute(sa.select(team_configs).where(team_configs.c.team_id == team_id))
    ).first()
    if row is None:
        return None
    skill_fields = dict(row.skill_fields) if row.skill_fields is not None else None
    sla_working_hours = bool((skill_fields or {}).pop(SLA_WORKING_HOURS_KEY, False))
    return TeamConfig(
        team_id=row.team_id,
        sla_working_hours=sla_working_hours,
        strategy=row.strategy,
        offer_timeout_s=row.offer_timeout_s,
        max_rounds=row.max_rounds,
        parallel_k=row.parallel_k,
        fallback=msgspec.convert(row.fallback, FallbackPolicy) if row.fallback else None,
        skill_fields=skill_fields or None,
        queue_max_age_s=row.queue_max_age_s,
        sla_minutes=row.sla_minutes,
        max_reassigns=row.max_reassigns,
        updated_at=row.updated_at,
        routing=msgspec.convert(row.routing, TeamRouting) if row.routing else None,
    )


async def owner_row(conn: AsyncConnection, lead_id: uuid.UUID) -> Any:
    return (
        await conn.execute(sa.select(lead_owners).where(lead_owners.c.lead_id == lead_id))
    ).first()


async def move(conn: AsyncConnection, row: Any, now: dt.datetime, **values: Any) -> bool:
    """Change a lead's routing from the version ``row`` was read at; False if it moved since."""
    result = await conn.execute(
        lead_owners.update()
        .where(lead_owners.c.lead_id == row.lead_id, lead_owners.c.version == row.version)
        .values(version=row.version + 1, updated_at=now, **values)
    )
    return result.rowcount == 1


def pure_offer(row: Any) -> Offer:
    """An offers row as the pure layer's Offer (agent ids as strings)."""
    return Offer(
        lead_id=str(row.lead_id),
        agent_id=str(row.agent_id),
        mode=OfferMode(row.mode),
        offered_at=row.created_at,
        expires_at=row.expires_at,
        round=row.round,
        status=OfferStatus(row.status),
        closed_at=row.decided_at,
    )


async def lead_offers(conn: AsyncConnection, lead_id: uuid.UUID) -> list[Any]:
    """A lead's offers in the order the strategies replay them: by round, the pending one last
    (offers made in the same instant, e.g. a decline and the next offer, tie on time)."""
    rows = await conn.execute(sa.select(offers).where(offers.c.lead_id == lead_id))
    return sorted(
        rows, key=lambda r: (r.round, r.status == OfferStatus.PENDING.value, r.created_at)
    )


async def insert_offer(
    conn: AsyncConnection, offer: Offer, team_id: uuid.UUID, offer_id: uuid.UUID
) -> None:
    metrics.TEAM_OFFERS.labels(str(team_id), offer.mode.value).inc()
    await conn.execute(
        offers.insert().values(
            id=offer_id,
            lead_id=uuid.UUID(offer.lead_id),
            team_id=team_id,
            agent_id=uuid.UUID(offer.agent_id),
            mode=offer.mode.value,
            status=offer.status.value,
            round=offer.round,
            created_at=offer.offered_at,
            expires_at=offer.expires_at,
        )
    )


async def close_offer(
    conn: AsyncConnection, offer_id: uuid.UUID, to: OfferStatus, now: dt.datetime
) -> bool:
    """``pending -> to``, once: the guarded UPDATE that makes each offer end exactly once."""
    result = await conn.execute(
        offers.update()
        .where(offers.c.id == offer_id, offers.c.status == OfferStatus.PENDING.value)
        .values(status=to.value, decided_at=now)
    )
    return result.rowcount == 1
