"""The notification outbox: rows written in the transaction of the offer or assignment they
tell of, handed to a worker (and the live stream) once that transaction commits.

Hooks (``offered``, ``owned``, ``taken``) are called from routing inside its transaction (and
``unowned`` from the sweep of leads nobody took, ``notifications.unowned``). They
stay cheap for a team without notifications: its config comes from a small per-process cache
(``CONFIG_CACHE_TTL_S``; a PUT here forgets it at once, other processes within the TTL), and the
only other work is remembering a live-stream event on the connection.

After commit: SQLAlchemy Core has no "after commit" event, so what a transaction asked for is
kept in its connection's ``info`` and done when the connection goes back to the pool (after its
COMMIT); a ROLLBACK forgets it. A lost hand-over loses nothing: the rows are the truth and the
sweeper (``sender.sweep``) sends pending rows that are due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.ids import new_id
from exchange.notifications import stream
from exchange.notifications.messages import UNOWNED, NotificationConfigIn
from exchange.notifications.templates import DEFAULT_BODY, DEFAULT_SUBJECT, DEFAULTS, render
from exchange.store.db import after_commit, dialect_insert
from exchange.store.tables import (
    agent_profiles,
    leads,
    notifications,
    parties,
    team_notifications,
    verticals,
)

log = logging.getLogger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"
CONFIG_CACHE_TTL_S = 5.0
CONFIG_CACHE_MAX = 10_000

_cache: dict[uuid.UUID, tuple[float, NotificationConfigIn | None]] = {}


# -- the team's config, cached --------------------------------------------------------------------


def forget(team_id: uuid.UUID) -> None:
    _cache.pop(team_id, None)


async def config_of(conn: AsyncConnection, team_id: uuid.UUID) -> NotificationConfigIn | None:
    now = time.monotonic()
    hit = _cache.get(team_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    raw = (
        await conn.execute(
            sa.select(team_notifications.c.config).where(team_notifications.c.team_id == team_id)
        )
    ).scalar_one_or_none()
    cfg = msgspec.convert(raw, NotificationConfigIn) if raw else None
    if len(_cache) >= CONFIG_CACHE_MAX:
        _cache.clear()
    _cache[team_id] = (now + CONFIG_CACHE_TTL_S, cfg)
    return cfg


# -- after commit ---------------------------------------------------------------------------------


def _stash(conn: AsyncConnection) -> dict[str, list]:
    """This transaction's stream events and notification ids, pushed and enqueued once it
    committed (``db.after_commit``)."""
    return after_commit(conn, "notifications", _after, lambda: {"stream": [], "ids": []})


def _after(work: dict[str, list]) -> None:
    """Committed: push the stream events and enqueue the sending."""
    redis_url = _redis_url()
    for agent_id, name, data in work["stream"]:
        stream.publish(redis_url, agent_id, name, data)
    if work["ids"]:
        enqueue(work["ids"])


def _redis_url() -> str | None:
    from exchange.worker import runtime

    try:
        return runtime.settings().redis_url
    except RuntimeError:  # no broker set up in this process (a script): local only
        return None


def enqueue(ids: list[str], delay_ms: int = 0) -> None:
    from exchange.worker import actors

    try:
        if actors.send_notifications is not None:
            actors.send_notifications.send_with_options(args=(ids,), delay=delay_ms or None)
    except Exception:  # the broker is down: the sweeper sends them
        log.warning("could not enqueue notifications; the sweeper will", exc_info=True)


# -- hooks ----------------------------------------------------------------------------------------


async def offered(conn: AsyncConnection, offer: Any, team_id: uuid.UUID, now: dt.datetime) -> None:
    """Routing made ``offer`` (an ``exchange.teams.offers.Offer``) in this transaction."""
    data = {"lead_id": offer.lead_id, "team_id": str(team_id), "mode": offer.mode.value,
            "round": offer.round, "expires_at": offer.expires_at.isoformat()}  # fmt: skip
    _stash(conn)["stream"].append((offer.agent_id, "offered", data))
    cfg = await config_of(conn, team_id)
    if cfg is not None:
        await _write(conn, cfg, team_id, uuid.UUID(offer.lead_id), uuid.UUID(offer.agent_id),
                     "offered", offer.round, now, expires_at=offer.expires_at)  # fmt: skip


async def owned(
    conn: AsyncConnection, lead_id: uuid.UUID, team_id: uuid.UUID, agent_id: uuid.UUID,
    now: dt.datetime, reassigns: int = 0,
) -> None:
    """``agent_id`` owns the lead from now on (its ``reassigns``-th owner after the SLA)."""
    data = {"lead_id": str(lead_id), "team_id": str(team_id)}
    _stash(conn)["stream"].append((str(agent_id), "assigned", data))
    cfg = await config_of(conn, team_id)
    if cfg is not None:
        event = "reassigned" if reassigns else "assigned"
        await _write(conn, cfg, team_id, lead_id, agent_id, event, reassigns, now)


async def taken(
    conn: AsyncConnection, lead_id: uuid.UUID, team_id: uuid.UUID, agent_id: uuid.UUID,
    now: dt.datetime, reassigns: int, rescinded: list[uuid.UUID],
) -> None:
    """An agent accepted or claimed an offer of the lead; the agents in ``rescinded`` lost
    theirs (what the claim's own writes returned: no read here)."""
    await owned(conn, lead_id, team_id, agent_id, now, reassigns)
    work = _stash(conn)["stream"]
    for loser in rescinded:
        work.append((str(loser), "rescinded", {"lead_id": str(lead_id)}))


async def unowned(
    conn: AsyncConnection, cfg: NotificationConfigIn, team_id: uuid.UUID, lead_id: uuid.UUID,
    routed_at: dt.datetime, now: dt.datetime,
) -> int:
    """Nobody owns the lead ``cfg.unowned_minutes`` after it was routed to the team: the
    managers listening to ``unowned`` are told (once per lead: the rows' keys). ``unowned.py``
    finds such leads."""
    return await _write(conn, cfg, team_id, lead_id, None, UNOWNED, 0, now, routed_at=routed_at)


# -- writing the rows -----------------------------------------------------------------------------


async def _facts(
    conn: AsyncConnection, team_id: uuid.UUID, lead_id: uuid.UUID, agent_id: uuid.UUID | None
) -> tuple[Any, Any, str]:
    lead = (
        await conn.execute(
            sa.select(leads.c.id, leads.c.score, leads.c.priority, verticals.c.slug)
            .join(verticals, verticals.c.id == leads.c.vertical_id)
            .where(leads.c.id == lead_id)
        )
    ).one()
    agent = None if agent_id is None else (
        await conn.execute(
            sa.select(parties.c.name, agent_profiles.c.email)
            .outerjoin(agent_profiles, agent_profiles.c.agent_id == parties.c.id)
            .where(parties.c.id == agent_id)
        )
    ).one()
    team_name = (
        await conn.execute(sa.select(parties.c.name).where(parties.c.id == team_id))
    ).scalar_one()
    return lead, agent, team_name


def recipients(
    cfg: NotificationConfigIn, event: str, score: int | None, agent_email: str | None
) -> list[tuple[str, str, str]]:
    """(role, channel, address) of everyone told of ``event``: the agent by its channels, the
    managers whose rule matches (events, ``min_score``). A channel with no address is skipped."""
    out: list[tuple[str, str, str]] = []
    url = cfg.webhook.url if cfg.webhook else None

    def add(role: str, channels: list[str], email: str | None) -> None:
        for channel in channels:
            address = email if channel == "email" else url
            if address and (role, channel, address) not in out:
                out.append((role, channel, address))

    if cfg.agent is not None and event in cfg.agent.events:
        add("agent", cfg.agent.channels, agent_email)
    for m in cfg.managers:
        if event in m.events and (m.min_score is None or (score is not None and score >= m.min_score)):
            add(f"manager:{m.email}", m.channels, m.email)
    return out


def message(
    cfg: NotificationConfigIn, event: str, channel: str, values: dict[str, Any]
) -> tuple[str, str]:
    """The rendered (subject, body) of the team's template for this event and channel."""
    t = cfg.templates.get(event, {}).get(channel)  # type: ignore[call-overload]
    default_subject, default_body = DEFAULTS.get(event, (DEFAULT_SUBJECT, DEFAULT_BODY))
    subject = (t.subject if t and t.subject is not None else None) or default_subject
    body = (t.body if t and t.body is not None else None) or default_body
    return render(subject, values), render(body, values)


def _link(event: str, lead_id: uuid.UUID) -> str:
    if event == UNOWNED:
        return f"/v1/leads/{lead_id}/routing"
    return "/v1/agents/me/offers" if event == "offered" else "/v1/agents/me/leads"


async def _write(
    conn: AsyncConnection, cfg: NotificationConfigIn, team_id: uuid.UUID, lead_id: uuid.UUID,
    agent_id: uuid.UUID | None, event: str, n: int, now: dt.datetime,
    expires_at: dt.datetime | None = None, routed_at: dt.datetime | None = None,
) -> int:
    """The rows telling of ``event`` (``agent_id`` None: about no agent, as ``unowned``); how
    many were new (a row already written under its key is not written again)."""
    if not (cfg.agent and event in cfg.agent.events) and not any(
        event in m.events for m in cfg.managers
    ):
        return 0
    lead, agent, team_name = await _facts(conn, team_id, lead_id, agent_id)
    agent_email = agent.email if agent is not None else None
    values = {
        "event": event, "agent_name": agent.name if agent is not None else None,
        "team_name": team_name, "lead_id": lead_id,
        "vertical": lead.slug, "score": lead.score, "priority": lead.priority,
        "expires_at": expires_at.isoformat() if expires_at else None,
        "routed_at": routed_at.isoformat() if routed_at else None, "link": _link(event, lead_id),
    }  # fmt: skip
    ids = _stash(conn)["ids"]
    written = 0
    for role, channel, address in recipients(cfg, event, lead.score, agent_email):
        subject, body = message(cfg, event, channel, values)
        payload = {"subject": subject, "body": body}
        if channel == "webhook":
            payload = {"event": event, "team_id": str(team_id), "lead_id": str(lead_id),
                       "agent_id": str(agent_id) if agent_id else None,
                       "recipient": role.split(":", 1)[0],
                       "recipient_email": agent_email if role == "agent" else role[8:],
                       "vertical": lead.slug, "score": lead.score, "priority": lead.priority,
                       "expires_at": values["expires_at"], **payload}  # fmt: skip
        digest = hashlib.sha256(f"{role}|{channel}|{address}".encode()).hexdigest()[:32]
        key = f"{event}:{lead_id}:{agent_id or '-'}:{n}:{digest}"
        inserted = (
            await conn.execute(
                dialect_insert(conn, notifications)
            .values(
                id=new_id(), key=key, team_id=team_id, lead_id=lead_id, party_id=agent_id,
                event=event, channel=channel, address=address, payload=payload, status=PENDING,
                attempts=0, next_attempt_at=now, created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(notifications.c.id)
            )
        ).first()  # fmt: skip
        if inserted is not None:
            ids.append(str(inserted.id))
            written += 1
    return written
