"""Internal teams over the database: what operators set and agents do (presence, offers, claims,
owned leads). Routing itself is in ``exchange.teams.routing``, the timers in ``sweeper``.

The decisions are the pure layer's (``agents``, ``round_robin``, ``sequential``, ``parallel``,
``queue``, ``sla``); this module reads their inputs, and commits their answers with guarded
writes (``exchange.teams.store``):

- A lead routed to a team has one ``lead_owners`` row. Every step of its routing first bumps the
  row's ``version`` from the value it read, so two workers (or an agent and the sweeper) never
  both act on the same step; a parallel claim is the single ``UPDATE ... WHERE status =
  'offered'`` that makes exactly one agent the owner (Property 6).
- Counting a lead against an agent is a compare-and-set on the counters the decision used, so
  caps and round-robin standings hold across processes (Property 3).
- Nothing depends on a client: offers expire, queues drain and the SLA reassigns in
  ``sweeper.sweep``, which a Dramatiq actor runs on a timer (durable: its input is the database).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import crm, metrics
from exchange.auth.parties import PartyKind, Principal, check_timezone, get_party
from exchange.calls.terms import address_problem
from exchange.errors import ApiError, FieldProblem, forbidden, not_found
from exchange.ids import new_id
from exchange.notifications import outbox as notify
from exchange.outcomes import service as outcomes
from exchange.store.db import Database
from exchange.store.tables import (
    agent_profiles,
    lead_owners,
    lead_pii,
    leads,
    offers,
    team_configs,
    team_routes,
    verticals,
)
from exchange.teams import hybrid, parallel, reasons, round_robin, sequential, store
from exchange.teams.agents import (
    ManualStatus,
    evaluate_team,
    is_online,
    local_day,
    validate_agent,
)
from exchange.teams.agents import served_today as agent_served_today
from exchange.teams.messages import (
    CloseIn,
    Exclusion,
    OfferAudit,
    OfferOut,
    OwnedLead,
    Ownership,
    Profile,
    ProfileIn,
    Route,
    RouteIn,
    RoutingAudit,
    TeamConfig,
    TeamConfigIn,
    TeamRouting,
)
from exchange.teams.offers import (
    FallbackKind,
    FallbackPolicy,
    OfferMode,
    OfferStatus,
)
from exchange.teams.routing import (
    CLOSED,
    OFFERED,
    OWNED,
    advance,
    conflict,
    lead_requirements,
    ownership_of,
    par_state,
    remember_accounts,
    seq_state,
    team_config,
    utcnow,
)
from exchange.teams.store import Member

log = logging.getLogger(__name__)


# -- operator settings ----------------------------------------------------------------------------


async def _party_of_kind(conn: AsyncConnection, party_id: uuid.UUID, kind: PartyKind) -> Any:
    party = await get_party(conn, party_id)
    if party is None or party.kind is not kind:
        raise not_found(kind.value)
    return party


_FALLBACK_TARGET_KIND = {FallbackKind.TEAM: PartyKind.TEAM, FallbackKind.PERSON: PartyKind.AGENT}


async def _check_fallback(
    conn: AsyncConnection, policy: FallbackPolicy, team_id: uuid.UUID
) -> None:
    """A team or person fallback names an existing team or agent; a queue is this team's own."""
    want = _FALLBACK_TARGET_KIND.get(policy.kind)
    if want is None:
        if policy.target != str(team_id):
            raise ApiError(422, "validation_failed", "a queue fallback is the team's own queue",
                           fields=[FieldProblem("fallback.target", "must be this team's id")])  # fmt: skip
        return
    try:
        party = await get_party(conn, uuid.UUID(policy.target))
    except ValueError:
        party = None
    if party is None or party.kind is not want:
        raise ApiError(422, "validation_failed", f"fallback target is not a {want.value}",
                       fields=[FieldProblem("fallback.target", f"must name an existing {want.value}")])  # fmt: skip


def _check_routing(routing: TeamRouting) -> None:
    check_timezone(routing.timezone, "routing.timezone")
    problems = hybrid.validate_rules(routing.rules, path="routing.rules")
    if problems:
        raise ApiError(422, "validation_failed", "the team's routing rules are not usable",
                       fields=[FieldProblem(path, reason) for path, reason in problems])  # fmt: skip


async def set_config(
    conn: AsyncConnection, team_id: uuid.UUID, data: TeamConfigIn, now: dt.datetime
) -> TeamConfig:
    await _party_of_kind(conn, team_id, PartyKind.TEAM)
    if data.fallback is not None:
        await _check_fallback(conn, data.fallback, team_id)
    if data.routing is not None:
        _check_routing(data.routing)
    values = msgspec.to_builtins(data)
    values["updated_at"] = now
    if values.pop("sla_working_hours", False):  # kept in the skill_fields JSON (store.config)
        values["skill_fields"] = {
            **(values["skill_fields"] or {}),
            store.SLA_WORKING_HOURS_KEY: True,
        }
    updated = await conn.execute(
        team_configs.update().where(team_configs.c.team_id == team_id).values(**values)
    )
    if updated.rowcount == 0:
        await conn.execute(team_configs.insert().values(team_id=team_id, **values))
    found = await store.config(conn, team_id)
    assert found is not None
    return found


async def set_profile(
    conn: AsyncConnection, agent_id: uuid.UUID, data: ProfileIn, now: dt.datetime
) -> Profile:
    await _party_of_kind(conn, agent_id, PartyKind.AGENT)
    check_timezone(data.timezone, "timezone")
    if data.call_destination is not None and (problem := address_problem(data.call_destination)):
        raise ApiError(422, "validation_failed", "invalid agent profile",
                       fields=[FieldProblem("call_destination", problem)])  # fmt: skip
    hours = data.working_hours
    if hours is not None:  # the agent's own clock wins (see exchange.teams.agents)
        hours = msgspec.structs.replace(hours, timezone=data.timezone)
    values = {
        "timezone": data.timezone,
        "working_hours": msgspec.to_builtins(hours) if hours else None,
        "skills": msgspec.to_builtins(data.skills),
        "weight": data.weight,
        "tier": data.tier,
        "daily_cap": data.daily_cap,
        "concurrent_cap": data.concurrent_cap,
        "heartbeat_ttl_s": data.heartbeat_ttl_s,
        "email": data.email,
        "call_destination": data.call_destination,
    }
    updated = await conn.execute(
        agent_profiles.update().where(agent_profiles.c.agent_id == agent_id).values(**values)
    )
    joined = updated.rowcount == 0
    if joined:
        await conn.execute(
            agent_profiles.insert().values(
                agent_id=agent_id, manual_status=ManualStatus.AVAILABLE.value, served_today=0,
                open_leads=0, served_in_window=0, **values,
            )
        )  # fmt: skip
    m = await store.member(conn, agent_id)
    assert m is not None
    problems = validate_agent(m.agent, path="body")
    if problems:
        raise ApiError(
            422, "validation_failed", "invalid agent profile",
            fields=[FieldProblem(p.replace("body.", "", 1), r) for p, r in problems],
        )  # fmt: skip
    if joined:
        m = await _calibrate(conn, m, now)
    return store.profile_of(m, now)


async def get_profile(conn: AsyncConnection, agent_id: uuid.UUID, now: dt.datetime) -> Profile:
    m = await store.member(conn, agent_id)
    if m is None:
        raise not_found("agent profile")
    return store.profile_of(m, now)


async def set_route(conn: AsyncConnection, data: RouteIn, now: dt.datetime) -> Route:
    # The vertical's row is locked: two writers of one route (whose NULLs the unique index does
    # not compare) take turns, so the second finds the first's row instead of adding a twin.
    vertical_id = (
        await conn.execute(
            sa.select(verticals.c.id).where(verticals.c.slug == data.vertical).with_for_update()
        )
    ).scalar_one_or_none()
    if vertical_id is None:
        raise ApiError(422, "validation_failed", "unknown vertical",
                       fields=[FieldProblem("vertical", f"no vertical {data.vertical!r}")])  # fmt: skip
    team = await get_party(conn, data.team_id)
    if team is None or team.kind is not PartyKind.TEAM:
        raise ApiError(422, "validation_failed", "not a team",
                       fields=[FieldProblem("team_id", "must name an existing team")])  # fmt: skip
    channel = data.channel.value if data.channel is not None else None
    # NULLs never collide in a unique index, so find a catch-all route (any source, any
    # channel) by hand: the same (vertical, source, channel), null matching null.
    where = sa.and_(
        team_routes.c.vertical_id == vertical_id,
        _same(team_routes.c.source, data.source),
        _same(team_routes.c.channel, channel),
    )
    route_id = (await conn.execute(sa.select(team_routes.c.id).where(where))).scalar_one_or_none()
    if route_id is None:
        route_id = new_id()
        await conn.execute(
            team_routes.insert().values(
                id=route_id, vertical_id=vertical_id, source=data.source, channel=channel,
                team_id=data.team_id, updated_at=now,
            )
        )  # fmt: skip
    else:
        await conn.execute(
            team_routes.update()
            .where(team_routes.c.id == route_id)
            .values(team_id=data.team_id, updated_at=now)
        )
    return Route(
        id=route_id, vertical=data.vertical, source=data.source, channel=channel,
        team_id=data.team_id, updated_at=now,
    )  # fmt: skip


def _same(column: sa.ColumnElement, value: str | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


async def list_routes(
    conn: AsyncConnection, *, vertical: str | None, team_id: uuid.UUID | None, limit: int,
    after: uuid.UUID | None,
) -> list[Route]:
    """Team routes, in id order (``after``: the last id of the previous page)."""
    query = (
        sa.select(team_routes, verticals.c.slug)
        .join(verticals, verticals.c.id == team_routes.c.vertical_id)
        .order_by(team_routes.c.id)
        .limit(limit)
    )
    if vertical is not None:
        query = query.where(verticals.c.slug == vertical)
    if team_id is not None:
        query = query.where(team_routes.c.team_id == team_id)
    if after is not None:
        query = query.where(team_routes.c.id > after)
    return [
        Route(id=r.id, vertical=r.slug, source=r.source, channel=r.channel, team_id=r.team_id,
              updated_at=r.updated_at)
        for r in await conn.execute(query)
    ]  # fmt: skip


# -- agent presence -------------------------------------------------------------------------------


async def _me(conn: AsyncConnection, principal: Principal) -> Member:
    if principal.kind is not PartyKind.AGENT:
        raise forbidden("only an agent key has a /me as an agent")
    m = await store.member(conn, principal.party_id)
    if m is None:
        raise not_found("agent profile (an operator sets it with PUT /v1/agents/{id}/profile)")
    return m


def _present(m: Member, now: dt.datetime) -> bool:
    a = m.agent
    return a.active and a.manual_status is ManualStatus.AVAILABLE and is_online(a, now)


async def _calibrate(conn: AsyncConnection, m: Member, now: dt.datetime) -> Member:
    """An agent who joins or comes back starts at the team's current minimum standing: next
    once, never flooded with the leads it missed (``round_robin.calibrate``)."""
    team = [o for o in await store.members(conn, uuid.UUID(m.agent.team_id)) if _present(o, now)]
    weights = {o.agent.id: o.agent.weight for o in team} | {m.agent.id: m.agent.weight}
    mine = store.standing(m, now)  # every standing rolled to today's window
    new = round_robin.calibrate(mine, [store.standing(o, now) for o in team], weights)
    if new.served > mine.served:
        c = agent_profiles.c
        # Compare-and-set on what was read; the count now belongs to today (``served_on``),
        # with today's daily count carried over (0 if it was another day's).
        await conn.execute(
            agent_profiles.update()
            .where(
                c.agent_id == m.row.agent_id,
                c.served_in_window == m.row.served_in_window,
                c.served_on.is_not_distinct_from(m.row.served_on),
                c.served_today == m.row.served_today,
            )
            .values(
                served_in_window=new.served,
                served_on=local_day(m.agent, now),
                served_today=agent_served_today(m.agent, m.load, now),
            )
        )
        m = await store.member(conn, m.row.agent_id) or m
    return m


async def heartbeat(conn: AsyncConnection, principal: Principal, now: dt.datetime) -> Profile:
    m = await _me(conn, principal)
    returning = not _present(m, now)
    await conn.execute(
        agent_profiles.update()
        .where(agent_profiles.c.agent_id == m.row.agent_id)
        .values(last_heartbeat_at=now)
    )
    m = await store.member(conn, m.row.agent_id) or m
    if returning and _present(m, now):
        m = await _calibrate(conn, m, now)
    return store.profile_of(m, now)


async def set_status(
    conn: AsyncConnection, principal: Principal, status: ManualStatus, now: dt.datetime
) -> Profile:
    m = await _me(conn, principal)
    returning = not _present(m, now)
    await conn.execute(
        agent_profiles.update()
        .where(agent_profiles.c.agent_id == m.row.agent_id)
        .values(manual_status=status.value)
    )
    m = await store.member(conn, m.row.agent_id) or m
    if returning and _present(m, now):
        m = await _calibrate(conn, m, now)
    return store.profile_of(m, now)


# -- offers: the agent's answers ------------------------------------------------------------------


async def _my_offer(conn: AsyncConnection, principal: Principal, offer_id: uuid.UUID) -> Any:
    found = (await conn.execute(sa.select(offers).where(offers.c.id == offer_id))).first()
    if found is None:
        raise not_found("offer")
    if found.agent_id != principal.party_id:
        raise forbidden("this offer was made to another agent")
    return found


async def take_offer(
    db: Database, principal: Principal, offer_id: uuid.UUID, now: dt.datetime | None = None
) -> Ownership:
    """Accept a sequential offer or claim a parallel one (either verb works for either mode).
    A 409 whose lead another agent of the caller's own team owns names it (``owner_name``), so
    a lost claim can say who won; an owner in another team is never named."""
    try:
        return await _take_offer(db, principal, offer_id, now or utcnow())
    except ApiError as exc:
        await _name_owner(db, principal, exc)
        raise


async def _name_owner(db: Database, principal: Principal, exc: ApiError) -> None:
    details = exc.body.details
    if exc.status != 409 or not details or not details.get("owner_id"):
        return
    async with db.read() as conn:
        me = await get_party(conn, principal.party_id)
        owner = await get_party(conn, uuid.UUID(details["owner_id"]))
    same_team = me is not None and owner is not None and me.team_id == owner.team_id
    if same_team and me.team_id is not None:
        details["owner_name"] = owner.name


async def _take_offer(
    db: Database, principal: Principal, offer_id: uuid.UUID, now: dt.datetime
) -> Ownership:
    async with db.write() as conn:
        offer = await _my_offer(conn, principal, offer_id)
        if offer.mode == OfferMode.PARALLEL.value:
            return await _claim_parallel(conn, principal, offer, now)
        row = await store.owner_row(conn, offer.lead_id)
        cfg = await team_config(conn, row.team_id, now)
        rows = await store.lead_offers(conn, offer.lead_id)
        answer = sequential.accept(seq_state(row, cfg, rows), str(principal.party_id), now)
        if isinstance(answer, sequential.Refused):
            raise conflict(answer.reason, row)
        if row.status == OWNED and row.agent_id == principal.party_id:
            return ownership_of(row)  # a repeated accept by the owner
        if (won := await _own(conn, principal, offer, now)) is None:
            raise conflict(reasons.ALREADY_CLAIMED, await store.owner_row(conn, offer.lead_id))
        return await _taken(conn, principal, offer, won, now, before=row)


async def _claim_parallel(conn: AsyncConnection, principal: Principal, offer: Any, now: dt.datetime) -> Ownership:
    """A claim of a parallel offer: the compare-and-set first, reads only when it loses.

    Every claimer of a lead races at once; the losers wait on the winner's row lock, then see
    the lead owned. Trying the compare-and-set straight away (our offer pending and unexpired,
    the lead still ``offered``) is what ``parallel.claim`` would decide from the full state, and
    a lost race costs one more read instead of the team's config and every offer of the lead."""
    me = principal.party_id
    claimable = offer.status == OfferStatus.PENDING.value and now < offer.expires_at
    if claimable and (won := await _own(conn, principal, offer, now)) is not None:
        # What the lead was before our compare-and-set, and is again if what follows refuses.
        before = msgspec.structs.replace(_OFFERED, lead_id=offer.lead_id)
        return await _taken(conn, principal, offer, won, now, before=before)
    # Lost the race, or the offer was not claimable: why, from the lead as it stands now.
    row = await store.owner_row(conn, offer.lead_id)
    if row.status == OWNED:
        if row.agent_id == me:
            return ownership_of(row)  # a repeated claim by the owner
        raise conflict(reasons.ALREADY_CLAIMED, row)
    cfg = await team_config(conn, row.team_id, now)
    lost = parallel.claim(par_state(row, cfg, await store.lead_offers(conn, offer.lead_id)), str(me), now)
    raise conflict(lost.reason if isinstance(lost, parallel.Lost) else reasons.OFFER_NOT_PENDING, row)


class _LeadState(msgspec.Struct, frozen=True):
    """The fields of a ``lead_owners`` row a refusal reports (``routing.conflict``)."""

    lead_id: uuid.UUID | None
    status: str
    agent_id: uuid.UUID | None


_OFFERED = _LeadState(lead_id=None, status=OFFERED, agent_id=None)


async def _own(conn: AsyncConnection, principal: Principal, offer: Any, now: dt.datetime) -> Any:
    """The one compare-and-set that makes a single owner, whoever else claims right now: the
    lead's team, account keys, reassign count and past owners as it took it, or None when it
    lost."""
    taken = (
        await conn.execute(
            lead_owners.update()
            .where(lead_owners.c.lead_id == offer.lead_id, lead_owners.c.status == OFFERED)
            .values(status=OWNED, agent_id=principal.party_id, owned_since=now, reason=None,
                    version=lead_owners.c.version + 1, updated_at=now)
            .returning(lead_owners.c.team_id, lead_owners.c.account_keys,
                       lead_owners.c.reassign_count, lead_owners.c.past_owners)
        )
    ).first()  # fmt: skip
    if taken is not None:
        await remember_accounts(conn, taken.account_keys, offer.lead_id, taken.team_id,
                                principal.party_id, now)  # fmt: skip
    return taken


async def _taken(conn: AsyncConnection, principal: Principal, offer: Any, won: Any, now: dt.datetime, *, before: Any) -> Ownership:
    """After ``_own`` won: accept this offer, rescind the others, count the lead on the agent.
    A refusal raises, rolling the ownership back with the rest; it reports ``before``."""
    metrics.TEAM_ASSIGNMENTS.labels("claimed").inc()
    if not await store.close_offer(conn, offer.id, OfferStatus.ACCEPTED, now):
        raise conflict(reasons.OFFER_NOT_PENDING, before)
    rescinded = await conn.execute(
        offers.update()
        .where(offers.c.lead_id == offer.lead_id, offers.c.status == OfferStatus.PENDING.value)
        .values(status=OfferStatus.RESCINDED.value, decided_at=now)
        .returning(offers.c.agent_id)
    )
    losers = list(rescinded.scalars())
    if (reason := await store.take_fresh(conn, principal.party_id, now)) is not None:
        raise conflict(reason, before)
    await notify.taken(conn, offer.lead_id, won.team_id, principal.party_id, now,
                       won.reassign_count, losers)  # fmt: skip
    owner_number = len(won.past_owners or []) + 1  # a later owner is a push of its own
    await crm.record(conn, won.team_id, offer.lead_id, crm.assigned(owner_number), now)
    log.info("offer taken", extra={"lead_id": str(offer.lead_id), "agent_id": str(principal.party_id)})
    return ownership_of(await store.owner_row(conn, offer.lead_id))


async def decline_offer(
    db: Database, principal: Principal, offer_id: uuid.UUID, now: dt.datetime | None = None
) -> Ownership:
    now = now or utcnow()
    async with db.write() as conn:
        offer = await _my_offer(conn, principal, offer_id)
        row = await store.owner_row(conn, offer.lead_id)
        if offer.status != OfferStatus.PENDING.value or row.status != OFFERED:
            raise conflict(reasons.OFFER_NOT_PENDING, row)
        if not await store.move(conn, row, now):
            raise conflict(reasons.OFFER_NOT_PENDING, await store.owner_row(conn, offer.lead_id))
        await advance(conn, row, now, declined_by=str(principal.party_id))
        return ownership_of(await store.owner_row(conn, offer.lead_id))


# -- what an agent sees ---------------------------------------------------------------------------


async def my_offers(
    conn: AsyncConnection, principal: Principal, status: OfferStatus | None, limit: int
) -> list[OfferOut]:
    m = await _me(conn, principal)
    query = (
        sa.select(offers, leads.c.fields)
        .join(leads, leads.c.id == offers.c.lead_id)
        .where(offers.c.agent_id == m.row.agent_id)
        .order_by(offers.c.created_at, offers.c.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(offers.c.status == status.value)
    return [
        OfferOut(
            id=r.id,
            lead_id=r.lead_id,
            team_id=r.team_id,
            agent_id=r.agent_id,
            mode=r.mode,
            status=r.status,
            round=r.round,
            created_at=r.created_at,
            expires_at=r.expires_at,
            decided_at=r.decided_at,
            fields=r.fields or {},
        )
        for r in await conn.execute(query)
    ]


async def my_leads(conn: AsyncConnection, principal: Principal, limit: int) -> list[OwnedLead]:
    """The leads the agent owns now, with their PII (an owner needs it to call)."""
    m = await _me(conn, principal)
    rows = await conn.execute(
        sa.select(lead_owners, leads.c.fields, lead_pii.c.pii)
        .join(leads, leads.c.id == lead_owners.c.lead_id)
        .outerjoin(lead_pii, lead_pii.c.lead_id == lead_owners.c.lead_id)
        .where(lead_owners.c.agent_id == m.row.agent_id, lead_owners.c.status == OWNED)
        .order_by(lead_owners.c.owned_since, lead_owners.c.lead_id)
        .limit(limit)
    )
    return [
        OwnedLead(
            lead_id=r.lead_id,
            owned_since=r.owned_since,
            first_contact_at=r.first_contact_at,
            fields=r.fields or {},
            pii=r.pii or {},
        )
        for r in rows
    ]


async def contacted(
    conn: AsyncConnection, principal: Principal, lead_id: uuid.UUID, now: dt.datetime
) -> Ownership:
    """The owner made first contact: the SLA stops (the first time counts)."""
    row = await store.owner_row(conn, lead_id)
    if row is None or row.status != OWNED or row.agent_id != principal.party_id:
        raise forbidden("only the lead's current owner may record contact")
    if row.first_contact_at is None and await store.move(conn, row, now, first_contact_at=now):
        # The same contact as an outcome report, with its first response time (docs/outcomes.md).
        await outcomes.agent_contacted(conn, lead_id, principal.party_id, now)
    return ownership_of(await store.owner_row(conn, lead_id))


async def close_lead(
    conn: AsyncConnection, principal: Principal, lead_id: uuid.UUID, data: CloseIn, now: dt.datetime
) -> Ownership:
    """The owner closes a lead with an outcome: routing ends (``closed``, the outcome as its
    ``reason``) and the owner's ``open_leads`` goes down by one (never below 0), freeing its
    concurrent cap. Closing it again answers the same (idempotent); another agent's lead: 403."""
    for _ in range(store.CAS_ATTEMPTS):
        row = await store.owner_row(conn, lead_id)
        if row is not None and row.status == CLOSED and row.agent_id == principal.party_id:
            return ownership_of(row)  # already closed by this agent
        if row is None or row.status != OWNED or row.agent_id != principal.party_id:
            raise forbidden("only the lead's current owner may close it")
        if await store.move(conn, row, now, status=CLOSED, reason=data.outcome):
            await store.release(conn, principal.party_id)
            # Closing is reporting: won, lost and bad_lead are recorded (and counted) as outcomes.
            await outcomes.agent_closed(conn, lead_id, principal.party_id, data.outcome, now)
            log.info(
                "lead closed",
                extra={"lead_id": str(lead_id), "agent_id": str(principal.party_id),
                       "outcome": data.outcome, "note": data.note},
            )  # fmt: skip
            return ownership_of(await store.owner_row(conn, lead_id))
    raise conflict(reasons.ROUTING_CLOSED, await store.owner_row(conn, lead_id))


def _offer_audit(o: Any) -> OfferAudit:
    return OfferAudit(
        id=o.id, agent_id=o.agent_id, mode=o.mode, status=o.status, round=o.round,
        created_at=o.created_at, expires_at=o.expires_at, decided_at=o.decided_at,
    )  # fmt: skip


async def routing_audit(
    conn: AsyncConnection, lead_id: uuid.UUID, now: dt.datetime
) -> RoutingAudit:
    """``GET /v1/leads/{id}/routing``: where the lead stands, every offer with its lifecycle,
    and the team's agents not eligible for it now, each with its reason (computed on read)."""
    row = await store.owner_row(conn, lead_id)
    if row is None:
        raise not_found("routed lead")
    made = await store.lead_offers(conn, lead_id)
    cfg = await team_config(conn, row.team_id, now)
    fields = (
        await conn.execute(sa.select(leads.c.fields).where(leads.c.id == lead_id))
    ).scalar_one_or_none()
    team = await store.members(conn, row.team_id)
    decisions = evaluate_team(
        [m.agent for m in team], {m.agent.id: m.load for m in team},
        lead_requirements(cfg, fields), now,
    )  # fmt: skip
    base = msgspec.structs.asdict(ownership_of(row))
    return RoutingAudit(
        **base,
        offers=[_offer_audit(o) for o in made],
        excluded=[
            Exclusion(agent_id=uuid.UUID(d.agent_id), reason=d.reason or "not_eligible")
            for d in decisions
            if not d.eligible
        ],
    )
