"""Notifications: operators set a team's (and read its outbox); agents hold their live stream."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from litestar import Controller, Request, get, put
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import ServerSentEvent

from exchange.api.common import Page, db_of, page_limit, settings_of
from exchange.auth.middleware import allow
from exchange.auth.parties import PartyKind
from exchange.errors import ApiError, FieldProblem, forbidden
from exchange.notifications import service, stream
from exchange.notifications.messages import NotificationConfig, NotificationConfigIn


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NotificationController(Controller):
    path = "/v1/teams"
    tags = ["teams"]
    guards = [allow()]  # operators only

    @put(
        "/{team_id:uuid}/notifications/config",
        summary="Who hears of a team's offers and assignments, by which channel, in what words",
    )
    async def set_config(
        self, request: Request, team_id: FromPath[uuid.UUID], data: JSONBody[NotificationConfigIn]
    ) -> NotificationConfig:
        async with db_of(request).write() as conn:
            return await service.set_config(conn, team_id, data, _now())

    @get("/{team_id:uuid}/notifications/config", summary="A team's notification settings")
    async def config(self, request: Request, team_id: FromPath[uuid.UUID]) -> NotificationConfig:
        async with db_of(request).read() as conn:
            return await service.get_config(conn, team_id)

    @get("/{team_id:uuid}/notifications", summary="A team's notifications, oldest first")
    async def notifications(
        self,
        request: Request,
        team_id: FromPath[uuid.UUID],
        status: FromQuery[Literal["pending", "sent", "failed"] | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> Page:
        size = page_limit(settings_of(request), limit)
        async with db_of(request).read() as conn:
            return Page(items=await service.list_notifications(conn, team_id, status, size))


class AgentStreamController(Controller):
    path = "/v1/agents"
    tags = ["agents"]

    @get(
        "/me/stream",
        guards=[allow(PartyKind.AGENT)],
        summary="My offers, assignments and rescinded offers as they happen (Server-Sent Events); "
        "a reconnect with Last-Event-ID first gets what it missed",
    )
    async def stream(self, request: Request, seconds: FromQuery[int | None] = None) -> ServerSentEvent:
        if request.user.kind is not PartyKind.AGENT:
            raise forbidden("the stream is an agent's own: use the agent's key")
        max_s = stream.CONNECTION_MAX_S if seconds is None else seconds
        if not 1 <= max_s <= stream.CONNECTION_MAX_S:
            raise ApiError(422, "validation_failed", "stream length out of range",
                           fields=[FieldProblem("query.seconds",
                                                f"between 1 and {int(stream.CONNECTION_MAX_S)}")])  # fmt: skip
        redis_url = settings_of(request).redis_url
        # What an EventSource sends on reconnect; a malformed one is replayed as unknown.
        last_event_id = request.headers.get("last-event-id")
        return ServerSentEvent(stream.events(redis_url, str(request.user.party_id),
                                             last_event_id=last_event_id, max_s=max_s))  # fmt: skip
