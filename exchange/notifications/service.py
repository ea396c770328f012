"""A team's notification settings and its outbox, as operators see them."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auth.parties import PartyKind, get_party
from exchange.errors import ApiError, FieldProblem, not_found
from exchange.notifications import outbox, templates
from exchange.notifications.messages import (
    UNOWNED,
    NotificationConfig,
    NotificationConfigIn,
    NotificationOut,
    WebhookOut,
)
from exchange.store.tables import notifications, team_notifications


def check(data: NotificationConfigIn) -> None:
    """Refuse templates that name unknown placeholders, and an ``unowned`` manager rule without
    the team's ``unowned_minutes`` (422, each with its field path)."""
    problems: list[FieldProblem] = []
    for event, by_channel in data.templates.items():
        for channel, template in by_channel.items():
            for part in ("subject", "body"):
                text = getattr(template, part)
                for reason in templates.problems(text) if text else ():
                    problems.append(FieldProblem(f"templates.{event}.{channel}.{part}", reason))
    if data.unowned_minutes is None:
        for i, manager in enumerate(data.managers):
            if UNOWNED in manager.events:
                reason = "unowned needs the team's unowned_minutes"
                problems.append(FieldProblem(f"managers[{i}].events", reason))
    if problems:
        raise ApiError(422, "validation_failed", "the team's notification settings are unusable",
                       fields=problems)  # fmt: skip


async def _team(conn: AsyncConnection, team_id: uuid.UUID) -> None:
    party = await get_party(conn, team_id)
    if party is None or party.kind is not PartyKind.TEAM:
        raise not_found("team")


async def set_config(
    conn: AsyncConnection, team_id: uuid.UUID, data: NotificationConfigIn, now: dt.datetime
) -> NotificationConfig:
    await _team(conn, team_id)
    check(data)
    values = {"config": msgspec.to_builtins(data), "updated_at": now}
    updated = await conn.execute(
        team_notifications.update().where(team_notifications.c.team_id == team_id).values(**values)
    )
    if updated.rowcount == 0:
        await conn.execute(team_notifications.insert().values(team_id=team_id, **values))
    outbox.forget(team_id)
    return _shown(team_id, values["config"], now)


def _shown(team_id: uuid.UUID, config: dict, updated_at: dt.datetime) -> NotificationConfig:
    data = msgspec.convert(config, NotificationConfigIn)
    return NotificationConfig(
        team_id=team_id, agent=data.agent, managers=data.managers, templates=data.templates,
        webhook=WebhookOut(url=data.webhook.url) if data.webhook else None,
        unowned_minutes=data.unowned_minutes, updated_at=updated_at,
    )  # fmt: skip


async def get_config(conn: AsyncConnection, team_id: uuid.UUID) -> NotificationConfig:
    row = (
        await conn.execute(sa.select(team_notifications).where(team_notifications.c.team_id == team_id))
    ).first()
    if row is None:
        raise not_found("team notifications")
    return _shown(team_id, row.config, row.updated_at)


async def list_notifications(
    conn: AsyncConnection, team_id: uuid.UUID, status: str | None, limit: int
) -> list[NotificationOut]:
    c = notifications.c
    query = sa.select(notifications).where(c.team_id == team_id)
    if status is not None:
        query = query.where(c.status == status)
    rows = await conn.execute(query.order_by(c.created_at, c.id).limit(limit))
    return [
        NotificationOut(
            id=r.id, lead_id=r.lead_id, party_id=r.party_id, event=r.event, channel=r.channel,
            address=r.address, status=r.status, attempts=r.attempts, last_error=r.last_error,
            next_attempt_at=r.next_attempt_at, created_at=r.created_at, sent_at=r.sent_at,
        )  # fmt: skip
        for r in rows
    ]
