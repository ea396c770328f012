"""Dramatiq actors. Each is idempotent: Dramatiq delivers at least once."""

from __future__ import annotations

import logging

import dramatiq

from exchange.worker import maintenance, runtime

log = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "maintenance"
MAINTENANCE_MAX_RETRIES = 3
MAINTENANCE_TIME_LIMIT_MS = 60_000

DELIVERY_QUEUE = "delivery"
# Retries are ours (outbox backoff, bounded by settings), not Dramatiq's: an actor that raised
# would be retried by Dramatiq too and double the schedule. So delivery actors never raise for a
# buyer's failure; a bug that raises is retried a few times, then the sweeper takes over.
DELIVERY_MAX_RETRIES = 3
DELIVERY_TIME_LIMIT_MS = 60_000
SWEEP_BATCH = 200

purge_expired: dramatiq.Actor | None = None
expire_pings: dramatiq.Actor | None = None
deliver_sale: dramatiq.Actor | None = None
sweep_deliveries: dramatiq.Actor | None = None
route_to_team: dramatiq.Actor | None = None
sweep_offers: dramatiq.Actor | None = None
send_notifications: dramatiq.Actor | None = None
NOTIFICATIONS_QUEUE = "notifications"  # retries are the outbox's (exchange.notifications)
sync_crm: dramatiq.Actor | None = None
CRM_QUEUE = "crm"  # retries are the outbox's (exchange.crm.sender), as for deliveries
take_in_batch: dramatiq.Actor | None = None
INTAKE_QUEUE = "intake"  # large CSV batches, a chunk a message (exchange.channels.batches)
INTAKE_MAX_RETRIES = 3  # then the stalled-batch sweep sends it again
INTAKE_TIME_LIMIT_MS = 300_000  # a chunk stops at CHUNK_TIME_BUDGET_S (plus one slow row)

TEAMS_QUEUE = "teams"
TEAMS_MAX_RETRIES = 3
TEAMS_TIME_LIMIT_MS = 60_000


def _maintenance_actor(broker: dramatiq.Broker, fn, name: str) -> dramatiq.Actor:  # type: ignore[no-untyped-def]
    """Housekeeping: idempotent, cheap, re-enqueued on a timer, so few retries and a short limit."""
    return dramatiq.actor(
        fn,
        actor_name=name,
        queue_name=MAINTENANCE_QUEUE,
        broker=broker,
        max_retries=MAINTENANCE_MAX_RETRIES,
        time_limit=MAINTENANCE_TIME_LIMIT_MS,
    )


def declare(broker: dramatiq.Broker) -> None:
    global purge_expired, expire_pings, deliver_sale, sweep_deliveries, route_to_team, sweep_offers
    global send_notifications, sync_crm, take_in_batch

    async def _deliver_sale(sale_id: str) -> None:
        import uuid

        from exchange.auction import walking

        result = await walking.after_delivery(runtime.auction_context(), uuid.UUID(sale_id))
        if result.outcome == "retry" and result.retry_at is not None:
            walking.schedule_delivery(sale_id, result.retry_at)
        log.info("delivery attempt", extra={"sale_id": sale_id, "outcome": result.outcome})

    deliver_sale = dramatiq.actor(
        _deliver_sale,
        actor_name="deliver_sale",
        queue_name=DELIVERY_QUEUE,
        broker=broker,
        max_retries=DELIVERY_MAX_RETRIES,
        time_limit=DELIVERY_TIME_LIMIT_MS,
    )

    async def _sweep_deliveries() -> None:
        """Re-send deliveries whose retry is overdue: the message was lost or its worker died."""
        import datetime as dt

        from exchange.delivery import outbox

        now = dt.datetime.now(dt.timezone.utc)
        async with runtime.db().write() as conn:
            due = await outbox.due(conn, now, SWEEP_BATCH)
            await outbox.postpone(conn, due, now + dt.timedelta(seconds=runtime.settings().delivery_sweep_interval_s))
        for sale_id in due:
            deliver_sale.send(str(sale_id))
        if due:
            log.info("re-sent overdue deliveries", extra={"count": len(due)})
        from exchange.auction import walking

        stuck_after = dt.timedelta(seconds=runtime.settings().lead_stuck_after_s)
        await walking.settle_stuck_leads(runtime.auction_context(), older_than=stuck_after)
        from exchange.notifications import sender

        await sender.sweep(runtime.db(), runtime.settings())  # notifications due and unsent
        from exchange.crm import sender as crm_sender

        await crm_sender.sweep(runtime.db(), now, SWEEP_BATCH)  # CRM pushes due (lost or retrying)
        from exchange.channels import batches

        await batches.sweep_stalled(runtime.db(), runtime.settings(), now)  # CSV batches that stopped

    sweep_deliveries = _maintenance_actor(broker, _sweep_deliveries, "sweep_deliveries")

    async def _expire_pings() -> None:
        from exchange.auction.service import expire_pings as expire

        closed = await expire(runtime.db())
        if closed:
            log.info("expired pings", extra={"closed": closed})
        from exchange.calls.service import sweep as sweep_calls

        ended = await sweep_calls(runtime.db(), runtime.settings())
        if ended:
            log.info("ended calls", extra={"ended": ended})

    expire_pings = _maintenance_actor(broker, _expire_pings, "expire_pings")

    async def _purge_expired() -> None:
        counts = await maintenance.purge_expired(runtime.db(), runtime.settings())
        log.info("purged expired rows", extra={"counts": counts})

    purge_expired = _maintenance_actor(broker, _purge_expired, "purge_expired")

    async def _route_to_team(lead_id: str) -> None:
        """An unsold lead to its team (idempotent: a routed lead is left as it is)."""
        import uuid

        from exchange.teams import routing

        owner = await routing.route_lead(runtime.db(), uuid.UUID(lead_id))
        if owner is not None:
            log.info("lead routed to a team", extra={"lead_id": lead_id, "status": owner.status})

    route_to_team = dramatiq.actor(
        _route_to_team,
        actor_name="route_to_team",
        queue_name=TEAMS_QUEUE,
        broker=broker,
        max_retries=TEAMS_MAX_RETRIES,
        time_limit=TEAMS_TIME_LIMIT_MS,
    )

    async def _sweep_offers() -> None:
        """The teams' durable timers: expire offers, drain queues, enforce the SLA, tell
        managers of leads nobody took in time."""
        import datetime as dt

        from exchange.notifications import unowned
        from exchange.teams import sweeper

        result = await sweeper.sweep(runtime.db())
        if result.expired or result.drained or result.too_old or result.reassigned:
            log.info("swept team offers", extra={"result": str(result)})
        told = await unowned.sweep(runtime.db(), dt.datetime.now(dt.timezone.utc))
        if told:
            log.info("told managers of unowned leads", extra={"count": told})

    sweep_offers = _maintenance_actor(broker, _sweep_offers, "sweep_offers")

    async def _send_notifications(ids: list[str]) -> None:
        """Send pending notifications (idempotent: only a pending, due row is sent)."""
        from exchange.notifications import sender

        await sender.send(runtime.db(), runtime.settings(), ids)

    send_notifications = dramatiq.actor(
        _send_notifications,
        actor_name="send_notifications",
        queue_name=NOTIFICATIONS_QUEUE,
        broker=broker,
        max_retries=DELIVERY_MAX_RETRIES,
        time_limit=DELIVERY_TIME_LIMIT_MS,
    )

    async def _sync_crm(lead_id: str) -> None:
        """Push a lead's due CRM events (idempotent: only a pending, due row is claimed)."""
        import uuid

        from exchange.crm import outbox as crm_outbox
        from exchange.crm import sender as crm_sender

        ctx = runtime.auction_context()
        if ctx.http is None:  # pragma: no cover - the worker's context always has a session
            return
        done = await crm_sender.sync_lead(ctx.db, ctx.http, uuid.UUID(lead_id))
        if done.retry_at is not None:
            import datetime as dt

            wait = done.retry_at - dt.datetime.now(dt.timezone.utc)
            crm_outbox.enqueue(uuid.UUID(lead_id), int(wait.total_seconds() * 1000))

    sync_crm = dramatiq.actor(
        _sync_crm,
        actor_name="sync_crm",
        queue_name=CRM_QUEUE,
        broker=broker,
        max_retries=DELIVERY_MAX_RETRIES,
        time_limit=DELIVERY_TIME_LIMIT_MS,
    )

    async def _take_in_batch(batch_id: str) -> None:
        """A large CSV batch's next chunk, then a message for the one after (idempotent: rows
        are keyed by batch and line, and progress only counts once)."""
        import uuid

        from exchange.channels import batches, service

        if await service.take_in_batch(runtime.auction_context(), uuid.UUID(batch_id)):
            batches.enqueue(uuid.UUID(batch_id))

    take_in_batch = dramatiq.actor(
        _take_in_batch,
        actor_name="take_in_batch",
        queue_name=INTAKE_QUEUE,
        broker=broker,
        max_retries=INTAKE_MAX_RETRIES,
        time_limit=INTAKE_TIME_LIMIT_MS,
    )
