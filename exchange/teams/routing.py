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
from typing import Any, NamedTuple

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import crm, metrics
from exchange.auction.context import LEAD_SOLD, LEAD_UNSOLD
from exchange.auth.parties import PartyKind
from exchange.calls import ringing
from exchange.calls.ringing import RingPlan
from exchange.channels.names import API_CHANNEL
from exchange.errors import ApiError, not_found
from exchange.ids import new_id
from exchange.notifications import outbox as notify
from exchange.outcomes import stats as outcome_stats
from exchange.store.db import Database, dialect_insert, retrying
from exchange.store.tables import (
    account_owners,
    lead_owners,
    lead_pii,
    leads,
    parties,
    sales,
    team_routes,
)
from exchange.teams import (
    accounts,
    hybrid,
    parallel,
    performance,
    reasons,
    round_robin,
    sequential,
    store,
)
from exchange.teams.agents import (
    LeadRequirements,
    eligible_ids,
    evaluate_team,
)
from exchange.teams.messages import (
    Decision,
    Ownership,
    TeamConfig,
    TeamConfigIn,
    TeamRouting,
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
# Strategies that assign an owner at once (the others make offers an agent must take).
ASSIGNING = frozenset({"round_robin", "performance", "predictive"})
NO_ROUTING = TeamRouting()


class LeadFacts(NamedTuple):
    """What routing needs to know of a lead."""

    id: uuid.UUID
    fields: dict[str, Any] | None
    score: int | None
    priority: str | None


_FACTS = sa.select(leads.c.id, leads.c.fields, leads.c.score, leads.c.priority)


async def lead_facts(conn: AsyncConnection, lead_id: uuid.UUID) -> LeadFacts:
    row = (await conn.execute(_FACTS.where(leads.c.id == lead_id))).one()
    return LeadFacts(row.id, row.fields, row.score, row.priority)


def facts_of(lead: Any) -> LeadFacts:
    return LeadFacts(lead.id, lead.fields, lead.score, lead.priority)


def segment_of(routing: TeamRouting, lead: LeadFacts) -> str:
    """The segment an owner's conversion counts in: the lead's priority band, and the value of
    the team's ``segment_field`` when it has one (``*``: no segmentation)."""
    parts = []
    if lead.priority:
        parts.append(f"priority={lead.priority}")
    if routing.segment_field:
        value = (lead.fields or {}).get(routing.segment_field)
        parts.append(f"{routing.segment_field}={'' if value is None else value}")
    return ",".join(parts)[:200] or outcome_stats.ANY_SEGMENT


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


def rank_agents(
    team: list[Member], reqs: LeadRequirements, now: dt.datetime, decisions: Any = None
) -> list[str]:
    """Eligible agents, best first by round-robin standing (excluded ones are logged).
    ``decisions``: the team's ``evaluate_team`` already computed for this lead."""
    if decisions is None:
        decisions = _decisions(team, reqs, now)
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


class Plan(NamedTuple):
    """How a team picks among its eligible agents for one lead."""

    strategy: str  # round_robin, performance or predictive
    routing: TeamRouting
    tiers: frozenset[int]
    segment: str
    counts: dict[tuple[str, str], outcome_stats.Counts]  # conversion counts it ranks by
    lead_id: str
    present: frozenset[str] = frozenset()  # agents that count in the fairness floor's pool


async def _conversion_counts(
    conn: AsyncConnection, team_id: uuid.UUID, team: list[Member], segment: str
) -> dict[tuple[str, str], outcome_stats.Counts]:
    subjects = [outcome_stats.agent_subject(m.agent.id) for m in team]
    return await outcome_stats.read(conn, [*subjects, outcome_stats.team_subject(team_id)], [segment])


# An agent only at a cap right now still counts in the fairness floor's pool of the day.
_PRESENT_REASONS = frozenset({reasons.CONCURRENT_CAP_REACHED, reasons.DAILY_CAP_REACHED})


def _decisions(team: list[Member], reqs: LeadRequirements, now: dt.datetime) -> Any:
    return evaluate_team([m.agent for m in team], {m.agent.id: m.load for m in team}, reqs, now)


def _present(decisions: Any) -> frozenset[str]:
    return frozenset(d.agent_id for d in decisions if d.eligible or d.reason in _PRESENT_REASONS)


def _ranked(
    team: list[Member], eligible: list[str], plan: Plan, team_id: uuid.UUID, now: dt.datetime
) -> tuple[list[str], performance.Ranking | None]:
    """The eligible agents in the order the plan tries them (``performance.order_agents``)."""
    tier_of = {m.agent.id: m.row.tier for m in team} if plan.tiers else {}
    if plan.strategy == "round_robin":
        # ``eligible`` is already in round-robin order (``rank_agents``): what order_agents
        # would compute again from the same standings.
        return hybrid.tiered(eligible, tier_of, plan.tiers), None
    by_id = {m.agent.id: m for m in team}

    def counts(subject: str) -> performance.Counts:
        c = plan.counts.get((subject, plan.segment))
        return performance.Counts(trials=c.trials, successes=c.successes) if c else performance.Counts()

    candidates = [
        performance.Candidate(
            standing=store.standing(by_id[a], now), weight=by_id[a].agent.weight,
            counts=counts(outcome_stats.agent_subject(a)),
        )
        for a in eligible
    ]  # fmt: skip
    present = [m for m in team if m.agent.id in plan.present]
    pool = performance.Pool(
        served=sum(store.standing(m, now).served for m in present),
        weight=sum(m.agent.weight for m in present),
    )
    return performance.order_agents(
        plan.strategy, candidates, counts(outcome_stats.team_subject(team_id)),
        lead_id=plan.lead_id, floor_pct=plan.routing.fairness_floor_pct,
        prior_strength=plan.routing.prior_strength, pool=pool, tiers=plan.tiers, tier_of=tier_of,
    )  # fmt: skip


async def _assign(
    conn: AsyncConnection, team_id: uuid.UUID, reqs: LeadRequirements, now: dt.datetime,
    plan: Plan,
) -> tuple[uuid.UUID | None, str | None]:
    """The best eligible agent by the plan, its standing bumped by compare-and-set; on a lost
    race re-read and plan again (``round_robin`` docstring). (None, None): nobody eligible (or
    too much contention). The second value explains a performance or predictive choice."""
    for attempt in range(store.CAS_ATTEMPTS):
        team = await store.members(conn, team_id)
        decisions = _decisions(team, reqs, now)
        eligible = rank_agents(team, reqs, now, decisions)
        if not eligible:
            return None, None
        if plan.strategy != "round_robin":
            if attempt == 0:
                counts = await _conversion_counts(conn, team_id, team, plan.segment)
                plan = plan._replace(counts=counts)
            plan = plan._replace(present=_present(decisions))
        ranked, ranking = _ranked(team, eligible, plan, team_id, now)
        # Routers at once all rank the same agent first. Each takes the first agent in that
        # order that no other router is assigning right now (the row lock says so), instead of
        # queueing behind it and losing its compare-and-set when the first commits.
        first = await store.lock_first_free(conn, ranked) or ranked[0]
        chosen = next(m for m in team if m.agent.id == first)
        if await store.take(conn, chosen, now):
            return chosen.row.agent_id, ranking.explain(first) if ranking else None
    return None, None


class Choosing(NamedTuple):
    """What a team's settings make of one lead now: the strategy (after hybrid rules), the
    score tiers tried first, the conversion segment, and the decision that records them."""

    routing: TeamRouting
    reqs: LeadRequirements
    choice: hybrid.Choice
    tiers: frozenset[int]
    segment: str
    decision: Decision


def choosing(cfg: TeamConfig, lead: LeadFacts, now: dt.datetime) -> Choosing:
    routing = cfg.routing or NO_ROUTING
    choice = hybrid.strategy_for(cfg.strategy, routing.rules, routing.timezone, now, lead.score)
    tiers = hybrid.preferred_tiers(routing.score_tiers, lead.score)
    segment = segment_of(routing, lead)
    decision = Decision(strategy=choice.strategy, rule=choice.rule, segment=segment,
                        tiers=sorted(tiers))  # fmt: skip
    return Choosing(routing, lead_requirements(cfg, lead.fields), choice, tiers, segment, decision)


async def call_plan(
    conn: AsyncConnection, team_id: uuid.UUID, lead: LeadFacts, now: dt.datetime
) -> tuple[RingPlan | None, Decision]:
    """Where a team's call rings (exchange.calls.ringing): its agents that take calls (they
    have a call destination) and may take a lead now, in the order its strategy gives leads;
    no agent's counters move until one answers (``take_call``). ``lead.id``: the call's id,
    which seeds predictive routing's draw."""
    cfg = await team_config(conn, team_id, now)
    routing, reqs, choice, tiers, segment, decision = choosing(cfg, lead, now)
    team = [m for m in await store.members(conn, team_id) if m.row.call_destination]
    decisions = _decisions(team, reqs, now)
    eligible = rank_agents(team, reqs, now, decisions)
    tier_of = {m.agent.id: m.row.tier for m in team}
    ordered: list[str] = []
    if not eligible:
        pass
    elif choice.strategy in ASSIGNING:
        plan = Plan(choice.strategy, routing, tiers, segment, {}, str(lead.id))
        if choice.strategy != "round_robin":
            counts = await _conversion_counts(conn, team_id, team, segment)
            plan = plan._replace(counts=counts, present=_present(decisions))
        ordered, ranking = _ranked(team, eligible, plan, team_id, now)
        decision.explanation = ranking.explain(ordered[0]) if ranking and ordered else None
    elif choice.strategy == "parallel":
        ordered = [a for a in eligible if tier_of.get(a) in tiers] or eligible
    else:
        ordered = hybrid.tiered(eligible, tier_of, tiers)
    address = {m.agent.id: m.row.call_destination for m in team}
    ring = ringing.to_agents(
        choice.strategy, [(a, address[a]) for a in ordered], parallel_k=cfg.parallel_k,
        offer_timeout_s=cfg.offer_timeout_s,
    )  # fmt: skip
    return ring, decision


async def take_call(
    conn: AsyncConnection, lead_id: uuid.UUID, team_id: uuid.UUID, agent_id: uuid.UUID,
    decision: dict[str, Any] | None, now: dt.datetime,
) -> None:
    """An agent answered a team's call: the call's new lead is that agent's (its one owner; the
    row is new), counted in its standing like an assigned lead. An agent at its cap still owns
    the call it picked up; the decision says so."""
    await conn.execute(
        dialect_insert(conn, lead_owners).values(
            lead_id=lead_id, team_id=team_id, status=QUEUED, version=0, past_owners=[],
            queued_at=now, reassign_count=0, updated_at=now,
        )
    )  # fmt: skip
    refused = await store.take_fresh(conn, agent_id, now)
    told = msgspec.convert(decision, Decision) if decision else Decision(strategy="call")
    told.call = f"answered the call{f' ({refused})' if refused else ''}"
    await own(conn, lead_id, agent_id, now, decision=told)


def fallback_policy(cfg: TeamConfig, team_id: uuid.UUID) -> FallbackPolicy:
    return cfg.fallback or FallbackPolicy(kind=FallbackKind.QUEUE, target=str(team_id))


# -- routing --------------------------------------------------------------------------------------


async def route_for(conn: AsyncConnection, lead_id: uuid.UUID) -> tuple[Any, uuid.UUID] | None:
    """The lead and its team: the most specific route for its (vertical, source, channel)
    (``route_team``); None when no team takes it (or it is not an unsold real lead)."""
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
    team_id = await route_team(conn, lead.vertical_id, lead.source, lead.channel or API_CHANNEL)
    return (lead, team_id) if team_id is not None else None


async def route_team(
    conn: AsyncConnection, vertical_id: uuid.UUID, source: str | None, channel: str
) -> uuid.UUID | None:
    """The team whose route takes a lead of this vertical, source and channel: a route naming
    the source before one for every source, then one naming the channel before one for every
    channel; None when no route takes it."""
    rows = (
        await conn.execute(
            sa.select(team_routes.c.source, team_routes.c.channel, team_routes.c.team_id).where(
                team_routes.c.vertical_id == vertical_id,
                sa.or_(team_routes.c.source.is_(None), team_routes.c.source == source),
                sa.or_(team_routes.c.channel.is_(None), team_routes.c.channel == channel),
            )
        )
    ).all()
    best = sorted(rows, key=lambda r: (r.source is None, r.channel is None))
    return best[0].team_id if best else None


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
        cfg = await team_config(conn, team_id, now)
        keys, owner = None, None
        if cfg.routing is not None and cfg.routing.account_window_days is not None:
            keys, owner = await _account_owner(conn, db.settings.secret_key, lead, cfg.routing, now)
            if owner is not None and owner.team_id != team_id:  # the owner's team works it
                team_id, cfg = owner.team_id, await team_config(conn, owner.team_id, now)
        inserted = await conn.execute(
            dialect_insert(conn, lead_owners)
            .values(
                lead_id=lead_id, team_id=team_id, status=QUEUED, version=0, past_owners=[],
                queued_at=now, reassign_count=0, updated_at=now,
                account_keys=[list(k) for k in keys] if keys else None,
            )
            .on_conflict_do_nothing()
            .returning(lead_owners.c.lead_id)
        )  # fmt: skip
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
        if inserted.first() is not None:
            row = await store.owner_row(conn, lead_id)
            await start(conn, row, facts_of(lead), now, cfg=cfg, owner=owner)
        return ownership_of(await store.owner_row(conn, lead_id))


class AccountOwner(NamedTuple):
    team_id: uuid.UUID
    agent_id: uuid.UUID
    kind: str  # which account matched: phone, email, domain
    owned_at: dt.datetime


async def _account_owner(
    conn: AsyncConnection, secret: str, lead: Any, routing: TeamRouting, now: dt.datetime
) -> tuple[list[tuple[str, str]], AccountOwner | None]:
    """The lead's account keys, and the agent that most recently owned one of them within the
    team's window (a person match before a company-domain match)."""
    pii = (
        await conn.execute(sa.select(lead_pii.c.pii).where(lead_pii.c.lead_id == lead.id))
    ).scalar_one_or_none()
    keys = accounts.account_keys(secret, pii, lead.fields)
    if not keys or routing.account_window_days is None:
        return keys, None
    since = now - dt.timedelta(days=routing.account_window_days)
    rows = (
        await conn.execute(
            sa.select(account_owners).where(
                account_owners.c.key_hash.in_([h for _, h in keys]),
                account_owners.c.owned_at >= since,
                account_owners.c.lead_id != lead.id,
            )
        )
    ).all()
    if not rows:
        return keys, None
    best = max(rows, key=lambda r: (r.kind != accounts.DOMAIN, r.owned_at))
    return keys, AccountOwner(best.team_id, best.agent_id, best.kind, best.owned_at)


async def remember_accounts(
    conn: AsyncConnection, keys: Any, lead_id: uuid.UUID, team_id: uuid.UUID,
    agent_id: uuid.UUID, now: dt.datetime,
) -> None:
    """An agent took a lead: its accounts are that agent's from now on (account routing)."""
    for kind, key_hash in keys or ():
        insert = dialect_insert(conn, account_owners).values(
            key_hash=key_hash, kind=kind, team_id=team_id, agent_id=agent_id, lead_id=lead_id,
            owned_at=now,
        )  # fmt: skip
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=[account_owners.c.key_hash],
                set_={"kind": kind, "team_id": team_id, "agent_id": agent_id,
                      "lead_id": lead_id, "owned_at": now},
            )  # fmt: skip
        )


async def start(
    conn: AsyncConnection, row: Any, lead: LeadFacts, now: dt.datetime, *,
    cfg: TeamConfig | None = None, owner: AccountOwner | None = None,
) -> str:
    """Apply the team's strategy to a queued lead; the status it ends in. ``owner``: the agent
    that owns the lead's account, tried first."""
    cfg = cfg or await team_config(conn, row.team_id, now)
    routing, reqs, choice, tiers, segment, decision = choosing(cfg, lead, now)
    if not await store.move(conn, row, now, segment=segment):  # someone else is routing it
        return row.status
    if owner is not None:
        taken = await _to_account_owner(conn, row, reqs, owner, now)
        decision.account = taken
        if taken.startswith("owner took it"):
            decision.strategy = "account"
            await own(conn, row.lead_id, owner.agent_id, now, decision=decision)
            return OWNED
    if choice.strategy in ASSIGNING:
        plan = Plan(choice.strategy, routing, tiers, segment, {}, str(row.lead_id))
        agent_id, decision.explanation = await _assign(conn, row.team_id, reqs, now, plan)
        if agent_id is None:
            return await queue_lead(
                conn, row.lead_id, reasons.NOBODY_ELIGIBLE, now, decision=_json(decision)
            )
        await own(conn, row.lead_id, agent_id, now, decision=decision)
        return OWNED
    team = await store.members(conn, row.team_id)
    tier_of = {m.agent.id: m.row.tier for m in team}
    ranked = rank_agents(team, reqs, now)
    timeout = dt.timedelta(seconds=cfg.offer_timeout_s)
    policy = fallback_policy(cfg, row.team_id)
    lead_id = str(row.lead_id)
    made: tuple[Offer, ...]
    candidates = None
    if choice.strategy == "parallel":
        # A lead for senior tiers is offered to them alone when any of them is eligible.
        preferred = [a for a in ranked if tier_of.get(a) in tiers] or ranked
        step = parallel.offers(lead_id, preferred, now, timeout, policy, k=cfg.parallel_k)
        made = step.action if isinstance(step.action, tuple) else ()
    else:
        order = _order([m for m in team if m.agent.active], now)
        candidates = hybrid.tiered(order, tier_of, tiers)
        first = sequential.start(lead_id, candidates, now, timeout, cfg.max_rounds, policy, ranked)
        made = (first.action,) if isinstance(first.action, Offer) else ()
    if not made:  # nobody eligible: wait in the queue, whatever the fallback (rounds can't help)
        return await queue_lead(
            conn, row.lead_id, reasons.NOBODY_ELIGIBLE, now, decision=_json(decision)
        )
    for offer in made:
        await store.insert_offer(conn, offer, row.team_id, new_id())
        await notify.offered(conn, offer, row.team_id, now)
    await set_owner(
        conn, row.lead_id, now, status=OFFERED, agent_id=None, candidates=candidates, reason=None,
        decision=_json(decision),
    )  # fmt: skip
    return OFFERED


def _json(decision: Decision) -> dict[str, Any]:
    return msgspec.to_builtins(decision)


async def _to_account_owner(
    conn: AsyncConnection, row: Any, reqs: LeadRequirements, owner: AccountOwner,
    now: dt.datetime,
) -> str:
    """Give the lead to the agent that owns its account if it may take it now; what happened."""
    since = f"{owner.kind} match, owned {owner.owned_at.isoformat()}"
    team = await store.members(conn, row.team_id)
    mine = next((m for m in team if m.row.agent_id == owner.agent_id), None)
    if mine is None:
        return f"owner {owner.agent_id} no longer in the team ({since})"
    decision = next(
        d for d in evaluate_team([mine.agent], {mine.agent.id: mine.load}, reqs, now)
    )
    if not decision.eligible:
        return f"owner {owner.agent_id} not eligible: {decision.reason} ({since})"
    if await store.take_fresh(conn, owner.agent_id, now) is not None:
        return f"owner {owner.agent_id} at its cap ({since})"
    return f"owner took it ({since})"


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
    conn: AsyncConnection, lead_id: uuid.UUID, reason: str, now: dt.datetime, **values: Any
) -> str:
    """Back into the team's queue; ``values``: more columns written in the same UPDATE."""
    await set_owner(conn, lead_id, now, status=QUEUED, agent_id=None, reason=reason, **values)
    log.info("lead queued", extra={"lead_id": str(lead_id), "reason": reason})
    return QUEUED


async def own(
    conn: AsyncConnection, lead_id: uuid.UUID, agent_id: uuid.UUID, now: dt.datetime, *,
    decision: Decision | None = None,
) -> None:
    extra = {"decision": _json(decision)} if decision is not None else {}
    row = (
        await conn.execute(
            lead_owners.update()
            .where(lead_owners.c.lead_id == lead_id)
            .values(updated_at=now, status=OWNED, agent_id=agent_id, owned_since=now,
                    reason=None, first_contact_at=None, **extra)
            .returning(lead_owners.c.team_id, lead_owners.c.account_keys,
                       lead_owners.c.reassign_count, lead_owners.c.past_owners)
        )
    ).one()  # fmt: skip
    await remember_accounts(conn, row.account_keys, lead_id, row.team_id, agent_id, now)
    await notify.owned(conn, lead_id, row.team_id, agent_id, now, row.reassign_count)
    # To the team's CRM; a later owner (after the SLA took the lead) is a push of its own.
    owner_number = len(row.past_owners or []) + 1
    await crm.record(conn, row.team_id, lead_id, crm.assigned(owner_number), now)
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
    decision = getattr(row, "decision", None)
    return Ownership(
        lead_id=row.lead_id, team_id=row.team_id, agent_id=row.agent_id, status=row.status,
        reason=row.reason, owned_since=row.owned_since, first_contact_at=row.first_contact_at,
        reassign_count=row.reassign_count,
        decision=msgspec.convert(decision, Decision) if decision else None,
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
            await notify.offered(conn, after, row.team_id, now)
        elif before.status == OfferStatus.PENDING.value and not after.pending:
            await store.close_offer(conn, before.id, after.status, now)
    if isinstance(step.action, Fallback):
        await fall(conn, row.lead_id, step.action, now)
    return True
