"""Operations: the live flow for the operator's console (operators only)."""

from __future__ import annotations

import datetime as dt

from litestar import Controller, Request, get
from litestar.params import FromQuery

from exchange.api.common import db_of, settings_of
from exchange.auth.middleware import allow
from exchange.reports import flow as service
from exchange.reports.messages import Flow


class OpsController(Controller):
    path = "/v1/ops"
    tags = ["operations"]
    guards = [allow()]

    @get(
        "/flow",
        summary="The last minutes of the flow: leads per minute, sales, pings per buyer, queues",
        description=(
            "`minutes` (1 to 1440, default 60): one bucket per UTC minute, oldest first, the "
            "current (partial) minute last: leads received (test leads never count), sold, "
            "unsold, their delivered sales and revenue by currency, with the window's totals. "
            "`buyers`: live-bid buyers' pings, answers, timeouts and latency as this API "
            "process counted them since it started (its Prometheus collectors), the 50 most "
            "pinged. `teams`: leads queued or offered per team (the 50 longest queues). "
            "`outboxes`: deliveries, notifications and CRM pushes still to send. `broker`: "
            "the worker queues (null when the broker could not be read in time)."
        ),
    )
    async def flow(self, request: Request, minutes: FromQuery[int | None] = None) -> Flow:
        window = service.parse_minutes(minutes)
        broker = await service.broker_queues(
            request.app.state.broker, settings_of(request).redis_url
        )
        async with db_of(request).read() as conn:
            return await service.flow(
                conn, dt.datetime.now(dt.UTC), window, buyers=service.ping_stats(), broker=broker
            )
