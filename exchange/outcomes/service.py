"""Outcomes in the database: who may report on a lead, storing a report once, counting it.

- A reporter is an agent who owns the lead (``owned`` or ``closed`` by it) or owned it before an
  SLA reassignment (``past_owners``), or a buyer (or team) the lead was sold and delivered to
  (a ``sales`` row of its own, delivered or returned: what ``GET /v1/purchases`` lists). Anyone
  else gets the 404 an unknown lead gets (Property 8: nothing tells it the lead exists).
- One row per (lead, reporter, kind), by the table's unique key: a repeated report answers the
  stored row, whatever it carries (a replayed postback, a retried request).
- The first final outcome (won, lost, bad lead) a reporter sends adds a trial (and a success and
  the value when won) to ``conversion_stats``; a later one from the same reporter does not. The
  reporter's row (its ``lead_owners`` or ``sales`` row) is locked first, so two final reports
  of one reporter at once cannot both count.
- A lead a team bought through a campaign is worked by the team's agents: an agent's first final
  outcome counts that campaign too (segment ``*`` and the lead's priority segment, what the
  auction's conversion weights read). The campaign counts once per lead on the team's side: not
  again for a second agent (after a reassignment) nor for the team reporting as the buyer; the
  sale's row is locked for that check, so two such reports at once cannot both count it.
- An agent's ``contacted`` is the existing first-contact step (``teams.service.contacted``: the
  SLA stops); closing a lead (``teams.service.close_lead``) records its outcome here, in the
  same transaction. Every check runs before the first write, and a refusal raises inside the
  caller's transaction: bad input stores nothing (Property 7).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import crm, metrics
from exchange.auth.parties import PartyKind, Principal
from exchange.errors import FieldProblem, forbidden, not_found, validation_error
from exchange.ids import new_id
from exchange.ledger.reconcile import CHARGED_STATUSES, SALE_DELIVERED
from exchange.outcomes import stats
from exchange.outcomes.messages import (
    FINAL_KINDS,
    REASON_KINDS,
    VALUE_KINDS,
    FirstResponse,
    Outcome,
    OutcomeChannel,
    OutcomeIn,
    OutcomeKind,
    Outcomes,
    ReporterKind,
)
from exchange.store.db import dialect_insert
from exchange.store.tables import lead_outcomes, lead_owners, leads, parties, sales, verticals

OCCURRED_SKEW_S = 300  # clocks differ: a report this far in the future is still now
OCCURRED_MAX_AGE_DAYS = 90  # older than this is a backfill, not feedback routing should learn
# The lead_owners statuses in which its agent is the one who worked it.
OWNER_STATUSES = ("owned", "closed")
# The kinds of a close (``teams.messages.CloseOutcome``) that are outcomes; "other" is not.
CLOSE_KINDS = {"won": OutcomeKind.WON, "lost": OutcomeKind.LOST, "bad_lead": OutcomeKind.BAD_LEAD}


class Reporter(msgspec.Struct, frozen=True, kw_only=True):
    """A party allowed to report on a lead, and what its reports count against."""

    kind: ReporterKind
    party_id: uuid.UUID
    lead_id: uuid.UUID
    vertical_id: uuid.UUID
    source: str | None
    currency: str  # the vertical's: a won value must be in it
    lead_created_at: dt.datetime
    # An agent's: its team, the lead's segment, and its ownership when it is the owner now.
    team_id: uuid.UUID | None = None
    segment: str | None = None
    owner_status: str | None = None  # None: a past owner
    owned_since: dt.datetime | None = None
    first_contact_at: dt.datetime | None = None
    # A buyer's: the sale's campaign and when it was sold. An agent's: the campaign its team
    # bought the lead through (None: the lead did not come from a team's campaign).
    campaign_id: uuid.UUID | None = None
    sold_at: dt.datetime | None = None
    # The campaign is a team's (a team reporting as the buyer, or its agent): it counts once per
    # lead on the team's side, under the lead's priority segment as well.
    team_side: bool = False
    priority: str | None = None  # the lead's priority band


def _ms(delta: dt.timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))


def problems(
    data: OutcomeIn, *, currency: str, not_before: dt.datetime, now: dt.datetime
) -> list[FieldProblem]:
    """Every way a report does not fit its kind and its lead (empty: it fits). ``currency`` is
    the lead's vertical's; ``not_before`` when the lead came to be."""
    found = []
    if data.kind not in VALUE_KINDS:
        if data.value_minor is not None:
            found.append(FieldProblem("value_minor", "only a won outcome has a value"))
        if data.currency is not None:
            found.append(FieldProblem("currency", "only a won outcome has a currency"))
    elif data.currency is not None:
        if data.value_minor is None:
            found.append(FieldProblem("currency", "give value_minor with the currency"))
        elif data.currency != currency:
            found.append(FieldProblem("currency", f"must be the vertical's currency, {currency}"))
    if data.reason is not None and data.kind not in REASON_KINDS:
        found.append(FieldProblem("reason", "only lost and bad_lead outcomes have a reason"))
    at = data.occurred_at
    if at is not None:
        if at.tzinfo is None or at.utcoffset() is None:
            found.append(FieldProblem("occurred_at", "give a time zone offset (e.g. Z)"))
        elif at > now + dt.timedelta(seconds=OCCURRED_SKEW_S):
            found.append(FieldProblem("occurred_at", "in the future"))
        elif at < now - dt.timedelta(days=OCCURRED_MAX_AGE_DAYS):
            found.append(
                FieldProblem("occurred_at", f"more than {OCCURRED_MAX_AGE_DAYS} days ago")
            )
        elif at < not_before - dt.timedelta(seconds=OCCURRED_SKEW_S):
            found.append(FieldProblem("occurred_at", "before the lead existed"))
    return found


# --- who may report ---------------------------------------------------------------------------

_LEAD_COLUMNS = (
    leads.c.vertical_id,
    leads.c.source,
    leads.c.created_at.label("lead_created_at"),
    leads.c.priority,
    verticals.c.currency,
)


def _lead_join(table: sa.Table) -> Any:
    return table.join(leads, leads.c.id == table.c.lead_id).join(
        verticals, verticals.c.id == leads.c.vertical_id
    )


async def _as_agent(
    conn: AsyncConnection, agent_id: uuid.UUID, lead_id: uuid.UUID, lock: bool
) -> Reporter | None:
    bought = sa.and_(
        sales.c.lead_id == lead_owners.c.lead_id,
        sales.c.buyer_id == lead_owners.c.team_id,
        sales.c.status == SALE_DELIVERED,
    )
    query = (
        sa.select(lead_owners, sales.c.campaign_id.label("team_campaign_id"), *_LEAD_COLUMNS)
        .select_from(_lead_join(lead_owners).outerjoin(sales, bought))
        .where(lead_owners.c.lead_id == lead_id)
    )
    if lock:
        query = query.with_for_update(of=lead_owners)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    owner = row.agent_id == agent_id and row.status in OWNER_STATUSES
    if not owner and str(agent_id) not in (row.past_owners or []):
        return None
    return Reporter(
        kind=ReporterKind.AGENT, party_id=agent_id, lead_id=lead_id, vertical_id=row.vertical_id,
        source=row.source, currency=row.currency, lead_created_at=row.lead_created_at,
        team_id=row.team_id, segment=row.segment,
        owner_status=row.status if owner else None,
        owned_since=row.owned_since if owner else None,
        first_contact_at=row.first_contact_at if owner else None,
        campaign_id=row.team_campaign_id, team_side=row.team_campaign_id is not None,
        priority=row.priority,
    )  # fmt: skip


async def _as_buyer(
    conn: AsyncConnection, buyer_id: uuid.UUID, lead_id: uuid.UUID, lock: bool, team: bool
) -> Reporter | None:
    query = (
        sa.select(sales.c.campaign_id, sales.c.created_at, *_LEAD_COLUMNS)
        .select_from(_lead_join(sales))
        .where(
            sales.c.lead_id == lead_id,
            sales.c.buyer_id == buyer_id,
            sales.c.status.in_(CHARGED_STATUSES),
        )
    )
    if lock:
        query = query.with_for_update(of=sales)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return Reporter(
        kind=ReporterKind.BUYER, party_id=buyer_id, lead_id=lead_id, vertical_id=row.vertical_id,
        source=row.source, currency=row.currency, lead_created_at=row.lead_created_at,
        campaign_id=row.campaign_id, sold_at=row.created_at, team_side=team,
        priority=row.priority,
    )  # fmt: skip


async def reporter(
    conn: AsyncConnection,
    party_id: uuid.UUID,
    kind: PartyKind,
    lead_id: uuid.UUID,
    *,
    lock: bool = False,
) -> Reporter | None:
    """The party as a reporter on the lead, or None when it may not report on it (or the lead
    does not exist: the caller cannot tell the two apart). ``lock``: hold the reporter's row."""
    if kind is PartyKind.AGENT:
        return await _as_agent(conn, party_id, lead_id, lock)
    if kind in (PartyKind.BUYER, PartyKind.TEAM):
        return await _as_buyer(conn, party_id, lead_id, lock, kind is PartyKind.TEAM)
    return None


# --- storing and counting ----------------------------------------------------------------------


def _outcome(row: Any) -> Outcome:
    return Outcome(
        id=row.id, lead_id=row.lead_id, party_id=row.party_id, kind=OutcomeKind(row.kind),
        value_minor=row.value_minor, currency=row.currency, reason=row.reason,
        channel=OutcomeChannel(row.channel), occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
    )  # fmt: skip


async def _stored(
    conn: AsyncConnection, lead_id: uuid.UUID, party_id: uuid.UUID, kind: OutcomeKind
) -> Outcome | None:
    c = lead_outcomes.c
    row = (
        await conn.execute(
            sa.select(lead_outcomes).where(
                c.lead_id == lead_id, c.party_id == party_id, c.kind == kind.value
            )
        )
    ).first()
    return _outcome(row) if row else None


def stat_keys(rep: Reporter) -> list[tuple[str, str]]:
    """Every (subject, segment) a final outcome of this reporter counts under."""
    keys = [(stats.source_subject(rep.vertical_id, rep.source), stats.ANY_SEGMENT)]
    if rep.kind is ReporterKind.AGENT:
        segment = stats.segment_of(rep.segment)
        for subject in (stats.agent_subject(rep.party_id), stats.team_subject(rep.team_id)):
            keys += [(subject, segment), (subject, stats.ANY_SEGMENT)]
    if rep.campaign_id is not None:
        campaign = stats.campaign_subject(rep.campaign_id)
        keys.append((campaign, stats.ANY_SEGMENT))
        if rep.team_side and rep.priority:
            # What the auction's conversion weights look up (exchange.auction.conversion).
            keys.append((campaign, f"priority={rep.priority}"))
    return keys


async def _team_campaign_counted(conn: AsyncConnection, rep: Reporter) -> bool:
    """Whether another reporter on the team's side (an agent of the lead, or the team as its
    buyer) already sent a final outcome on the lead, counting its campaign. The sale's row is
    locked first: every such reporter takes it before looking, so only one of them counts."""
    await conn.execute(
        sa.select(sales.c.id)
        .where(sales.c.lead_id == rep.lead_id, sales.c.campaign_id == rep.campaign_id)
        .with_for_update()
    )
    team_id = rep.team_id if rep.kind is ReporterKind.AGENT else rep.party_id
    o = lead_outcomes.c
    found = await conn.execute(
        sa.select(o.id)
        .select_from(lead_outcomes.join(parties, parties.c.id == o.party_id))
        .where(
            o.lead_id == rep.lead_id,
            o.kind.in_([k.value for k in FINAL_KINDS]),
            o.party_id != rep.party_id,
            sa.or_(parties.c.kind == PartyKind.AGENT.value, o.party_id == team_id),
        )
        .limit(1)
    )
    return found.first() is not None


async def _record(
    conn: AsyncConnection,
    rep: Reporter,
    kind: OutcomeKind,
    *,
    channel: OutcomeChannel,
    occurred_at: dt.datetime,
    now: dt.datetime,
    value_minor: int | None = None,
    currency: str | None = None,
    reason: str | None = None,
) -> tuple[Outcome, bool]:
    """Store the report unless this reporter sent this kind before; (the row, whether new)."""
    c = lead_outcomes.c
    earlier = await conn.execute(
        sa.select(c.kind).where(c.lead_id == rep.lead_id, c.party_id == rep.party_id)
    )
    kinds = {OutcomeKind(k) for k in earlier.scalars()}
    if kind in kinds:
        found = await _stored(conn, rep.lead_id, rep.party_id, kind)
        assert found is not None
        return found, False
    inserted = await conn.execute(
        dialect_insert(conn, lead_outcomes)
        .values(
            id=new_id(), lead_id=rep.lead_id, party_id=rep.party_id, kind=kind.value,
            value_minor=value_minor, currency=currency, reason=reason, channel=channel.value,
            occurred_at=occurred_at, recorded_at=now,
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=[c.lead_id, c.party_id, c.kind])
        .returning(c.id)
    )
    new = inserted.first() is not None
    stored = await _stored(conn, rep.lead_id, rep.party_id, kind)
    assert stored is not None
    if not new:  # sent at the same instant by another request: that one stands
        return stored, False
    await crm.record(conn, rep.team_id or rep.party_id, rep.lead_id, crm.outcome(kind.value), now)
    metrics.LEAD_OUTCOMES.labels(kind.value, rep.kind.value, channel.value).inc()
    if kind in FINAL_KINDS and not kinds & FINAL_KINDS:
        won = kind is OutcomeKind.WON
        keys = stat_keys(rep)
        if rep.team_side and rep.campaign_id is not None:
            if await _team_campaign_counted(conn, rep):
                campaign = stats.campaign_subject(rep.campaign_id)
                keys = [k for k in keys if k[0] != campaign]
        await stats.add(conn, keys, stats.count_for(won, value_minor), now)
    if kind is OutcomeKind.CONTACTED and rep.kind is ReporterKind.BUYER and rep.sold_at:
        metrics.FIRST_RESPONSE.labels(rep.kind.value).observe(
            _ms(occurred_at - rep.sold_at) / 1000
        )
    return stored, True


async def report(
    conn: AsyncConnection,
    principal: Principal,
    lead_id: uuid.UUID,
    data: OutcomeIn,
    now: dt.datetime,
    channel: OutcomeChannel = OutcomeChannel.API,
) -> tuple[Outcome, bool]:
    """``POST /v1/leads/{id}/outcomes`` (and a verified postback): (the stored report, whether
    it is new). A repeat of a kind answers the first report of it."""
    if principal.is_operator:
        raise forbidden("operators read outcomes; the lead's agent or buyer reports them")
    rep = await reporter(conn, principal.party_id, principal.kind, lead_id, lock=True)
    if rep is None:
        raise not_found("lead")
    found = problems(data, currency=rep.currency, not_before=rep.lead_created_at, now=now)
    if found:
        raise validation_error(found)
    currency = (data.currency or rep.currency) if data.value_minor is not None else None
    outcome, new = await _record(
        conn, rep, data.kind, channel=channel, occurred_at=data.occurred_at or now, now=now,
        value_minor=data.value_minor, currency=currency, reason=data.reason,
    )  # fmt: skip
    if (
        data.kind is OutcomeKind.CONTACTED
        and rep.owner_status == "owned"
        and rep.first_contact_at is None
    ):
        # The agent's first contact, exactly as POST /v1/leads/{id}/contacted records it (the
        # SLA stops). Imported here: teams.service imports this module for close and contact.
        from exchange.teams import service as teams

        await teams.contacted(conn, principal, lead_id, now)
    return outcome, new


async def agent_contacted(
    conn: AsyncConnection, lead_id: uuid.UUID, agent_id: uuid.UUID, now: dt.datetime
) -> None:
    """``teams.service.contacted`` set the lead's first contact: record it as a ``contacted``
    outcome (unless the agent reported one already) and its first response time."""
    rep = await _as_agent(conn, agent_id, lead_id, lock=False)
    if rep is None:
        return
    await _record(
        conn, rep, OutcomeKind.CONTACTED, channel=OutcomeChannel.API, occurred_at=now, now=now
    )
    if rep.owned_since is not None and rep.first_contact_at is not None:
        seconds = _ms(rep.first_contact_at - rep.owned_since) / 1000
        metrics.FIRST_RESPONSE.labels(ReporterKind.AGENT.value).observe(seconds)


async def agent_closed(
    conn: AsyncConnection, lead_id: uuid.UUID, agent_id: uuid.UUID, outcome: str, now: dt.datetime
) -> None:
    """``teams.service.close_lead`` closed the lead with ``outcome``: record the matching
    outcome (won, lost, bad_lead; "other" is none), counted like a reported one."""
    kind = CLOSE_KINDS.get(outcome)
    if kind is None:
        return
    rep = await _as_agent(conn, agent_id, lead_id, lock=False)
    if rep is not None:
        await _record(conn, rep, kind, channel=OutcomeChannel.API, occurred_at=now, now=now)


# --- reading -----------------------------------------------------------------------------------


def _first(party_id: uuid.UUID, reporter: ReporterKind, ms: int | None) -> FirstResponse:
    return FirstResponse(party_id=party_id, reporter=reporter, first_response_ms=ms)


async def _responses(
    conn: AsyncConnection, lead_id: uuid.UUID, rows: list[Outcome]
) -> list[FirstResponse]:
    """Each reporter's first response time on the lead (the current agent owner's and every
    buyer's that has a sale of it)."""
    found: list[FirstResponse] = []
    o = lead_owners.c
    owner = (
        await conn.execute(
            sa.select(o.agent_id, o.owned_since, o.first_contact_at)
            .where(o.lead_id == lead_id, o.status.in_(OWNER_STATUSES))
        )
    ).first()  # fmt: skip
    if owner is not None and owner.agent_id is not None:
        ms = None
        if owner.owned_since is not None and owner.first_contact_at is not None:
            ms = _ms(owner.first_contact_at - owner.owned_since)
        found.append(_first(owner.agent_id, ReporterKind.AGENT, ms))
    contacted = {r.party_id: r.occurred_at for r in rows if r.kind is OutcomeKind.CONTACTED}
    sold = await conn.execute(
        sa.select(sales.c.buyer_id, sales.c.created_at)
        .where(sales.c.lead_id == lead_id, sales.c.status.in_(CHARGED_STATUSES))
        .order_by(sales.c.created_at, sales.c.buyer_id)
    )
    for buyer_id, sold_at in sold:
        at = contacted.get(buyer_id)
        ms = _ms(at - sold_at) if at is not None else None
        found.append(_first(buyer_id, ReporterKind.BUYER, ms))
    return found


async def list_outcomes(
    conn: AsyncConnection, principal: Principal, lead_id: uuid.UUID
) -> Outcomes:
    """``GET /v1/leads/{id}/outcomes``: a reporter sees its own reports and first response, an
    operator every report and every reporter's; anyone else the 404 of an unknown lead."""
    query = sa.select(lead_outcomes).where(lead_outcomes.c.lead_id == lead_id)
    if principal.is_operator:
        exists = await conn.execute(sa.select(leads.c.id).where(leads.c.id == lead_id))
        if exists.first() is None:
            raise not_found("lead")
    else:
        if await reporter(conn, principal.party_id, principal.kind, lead_id) is None:
            raise not_found("lead")
        query = query.where(lead_outcomes.c.party_id == principal.party_id)
    c = lead_outcomes.c
    ordered = query.order_by(c.occurred_at, c.recorded_at, c.id)
    rows = [_outcome(r) for r in await conn.execute(ordered)]
    responses = await _responses(conn, lead_id, rows)
    if not principal.is_operator:
        responses = [r for r in responses if r.party_id == principal.party_id]
    times = [r.first_response_ms for r in responses if r.first_response_ms is not None]
    return Outcomes(
        lead_id=lead_id, items=rows, first_response_ms=min(times) if times else None,
        responses=responses,
    )  # fmt: skip
