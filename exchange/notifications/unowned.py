"""Managers told of leads nobody took: a team whose notification config sets
``unowned_minutes`` tells the managers listening to ``unowned`` of each lead routed to it that
still has no owner (queued, or only offered) that many minutes after it was routed.

Found by a sweep run with the teams' timers (the ``sweep_offers`` actor), bounded per run (teams
read, leads told); each lead in its own short transaction, which checks again that nobody owns
it. Each lead is told once: a lead with an ``unowned`` notification is not looked at again, and
the rows' keys make a repeated step write nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import sqlalchemy as sa

from exchange.notifications import outbox
from exchange.notifications.messages import UNOWNED, NotificationConfigIn
from exchange.store.db import Database
from exchange.store.tables import lead_owners, leads, notifications, team_notifications
from exchange.teams.routing import OFFERED, QUEUED

SWEEP_BATCH = 200  # leads told per run
TEAMS_MAX = 1_000  # teams' configs read per run
# A deadline older than this is not told: a rule turned on today does not page a manager about
# last week's leads (and the scan stays bounded).
LOOKBACK = dt.timedelta(days=1)
UNOWNED_STATUSES = (QUEUED, OFFERED)


def min_score(cfg: NotificationConfigIn) -> tuple[bool, int | None]:
    """(whether any manager can be told of ``unowned``, the lowest score one of them wants:
    None for any lead). A manager whose only channel is the webhook needs the team's webhook."""
    url = cfg.webhook.url if cfg.webhook else None
    rules = [m for m in cfg.managers
             if UNOWNED in m.events and any(c == "email" or url for c in m.channels)]  # fmt: skip
    if not rules:
        return False, None
    if any(m.min_score is None for m in rules):
        return True, None
    return True, min(m.min_score for m in rules if m.min_score is not None)


async def sweep(db: Database, now: dt.datetime, batch: int = SWEEP_BATCH) -> int:
    """Tell the managers of leads past their team's ``unowned_minutes``; how many leads."""
    async with db.read() as conn:
        teams = (
            await conn.execute(
                sa.select(team_notifications.c.team_id, team_notifications.c.config)
                .order_by(team_notifications.c.team_id)
                .limit(TEAMS_MAX)
            )
        ).all()
    told = 0
    for team in teams:
        if told >= batch:
            break
        cfg = msgspec.convert(team.config, NotificationConfigIn)  # validated when stored
        anyone, lowest = min_score(cfg)
        if cfg.unowned_minutes is None or not anyone:
            continue
        due = now - dt.timedelta(minutes=cfg.unowned_minutes)
        o = lead_owners.c
        told_already = sa.exists().where(
            notifications.c.lead_id == o.lead_id, notifications.c.event == UNOWNED
        )
        query = (
            sa.select(o.lead_id, o.queued_at)
            .where(o.team_id == team.team_id, o.status.in_(UNOWNED_STATUSES),
                   o.queued_at <= due, o.queued_at > due - LOOKBACK, ~told_already)
            .order_by(o.queued_at)
            .limit(batch - told)
        )  # fmt: skip
        if lowest is not None:  # leads no manager wants are not read again at every run
            query = query.join(leads, leads.c.id == o.lead_id).where(leads.c.score >= lowest)
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            told += await _tell(db, cfg, team.team_id, row.lead_id, row.queued_at, now)
    return told


async def _tell(
    db: Database,
    cfg: NotificationConfigIn,
    team_id: uuid.UUID,
    lead_id: uuid.UUID,
    routed_at: dt.datetime,
    now: dt.datetime,
) -> int:
    async with db.write() as conn:
        status = (
            await conn.execute(
                sa.select(lead_owners.c.status).where(
                    lead_owners.c.lead_id == lead_id, lead_owners.c.team_id == team_id
                )
            )
        ).scalar_one_or_none()
        if status not in UNOWNED_STATUSES:  # taken since the read
            return 0
        return 1 if await outbox.unowned(conn, cfg, team_id, lead_id, routed_at, now) else 0
