"""Dramatiq actors. Each is idempotent: Dramatiq delivers at least once."""

from __future__ import annotations

import logging

import dramatiq

from exchange.worker import maintenance, runtime

log = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "maintenance"
MAINTENANCE_MAX_RETRIES = 3
MAINTENANCE_TIME_LIMIT_MS = 60_000

purge_expired: dramatiq.Actor | None = None
expire_pings: dramatiq.Actor | None = None


def declare(broker: dramatiq.Broker) -> None:
    global purge_expired, expire_pings

    async def _expire_pings() -> None:
        from exchange.auction.service import expire_pings as expire

        closed = await expire(runtime.db())
        if closed:
            log.info("expired pings", extra={"closed": closed})

    expire_pings = dramatiq.actor(
        _expire_pings,
        actor_name="expire_pings",
        queue_name=MAINTENANCE_QUEUE,
        broker=broker,
        max_retries=MAINTENANCE_MAX_RETRIES,
        time_limit=MAINTENANCE_TIME_LIMIT_MS,
    )

    async def _purge_expired() -> None:
        counts = await maintenance.purge_expired(runtime.db(), runtime.settings())
        log.info("purged expired rows", extra={"counts": counts})

    purge_expired = dramatiq.actor(
        _purge_expired,
        actor_name="purge_expired",
        queue_name=MAINTENANCE_QUEUE,
        broker=broker,
        max_retries=MAINTENANCE_MAX_RETRIES,
        time_limit=MAINTENANCE_TIME_LIMIT_MS,
    )
