"""The core of CRM sync: send a lead's due rows, one connection at a time, in event order.

Per connection the lead's events go in the order they happened: the first creates the CRM
record and keeps its id (``external_id``); later ones update that record. A later event waits
while an earlier one is still pending (sending it first would create a second record); one
that ``failed`` for good does not hold the rest back.

Answers: 2xx -> the adapter parses it (synced); 408, 429, 5xx and transport errors -> retry
with exponential backoff until ``MAX_ATTEMPTS``, then failed; any other 4xx -> failed at once
(HubSpot's 409 on an existing email: update that contact instead). The error kept is short,
masked, and never holds the secret.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import Any

import aiohttp
import msgspec
import sqlalchemy as sa

from exchange import metrics
from exchange.crm import outbox
from exchange.crm.adapters import (
    Answer,
    LeadView,
    Verdict,
    error_text,
    hubspot,
    salesforce,
    webhook,
)
from exchange.crm.messages import (
    EVENT_ASSIGNED,
    EVENT_SOLD,
    FAILED,
    OUTCOME_PREFIX,
    PENDING,
    SYNCED,
    CrmConfig,
    CrmKind,
    base_event,
)
from exchange.delivery import transport
from exchange.delivery.outbox import backoff_ms
from exchange.store.db import Database
from exchange.store.tables import (
    crm_connections,
    crm_syncs,
    lead_outcomes,
    lead_owners,
    lead_pii,
    leads,
    parties,
    sales,
    verticals,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # then failed; with the backoff below, about 40 minutes of trying
BACKOFF_MIN_MS = 5_000
BACKOFF_MAX_MS = 15 * 60_000
LEASE_MARGIN_MS = 30_000  # an attempt holds its row for its timeout and this much more
RETRY_STATUSES = frozenset({408, 429})
ADAPTERS: dict[CrmKind, ModuleType] = {
    CrmKind.WEBHOOK: webhook, CrmKind.HUBSPOT: hubspot, CrmKind.SALESFORCE: salesforce,
}  # fmt: skip


_OF_CONNECTION = crm_connections.c.id == crm_syncs.c.connection_id


class Synced(msgspec.Struct, kw_only=True):
    """What one pass over a lead did, and when its next retry is due (None: nothing waits)."""

    synced: int = 0
    failed: int = 0
    retrying: int = 0
    retry_at: dt.datetime | None = None


def classify(kind: CrmKind, exchange_: transport.Exchange, external_id: str | None) -> Answer:
    """One answer as synced / retry / failed / update (pure: tests feed it sample answers)."""
    status = exchange_.status
    if status is None or exchange_.error is not None:
        return Answer(
            verdict=Verdict.RETRY, error=error_text(status, exchange_.error or "no answer")
        )
    if 200 <= status < 300:
        return ADAPTERS[kind].parse(status, exchange_.body, external_id)
    if status in RETRY_STATUSES or status >= 500:
        return Answer(verdict=Verdict.RETRY, error=error_text(status, exchange_.body))
    special = ADAPTERS[kind].refused(status, exchange_.body)
    if special is not None:
        return special
    return Answer(verdict=Verdict.FAILED, error=error_text(status, exchange_.body))


async def attempt(
    session: aiohttp.ClientSession,
    kind: CrmKind,
    config: CrmConfig,
    secret: str | None,
    view: LeadView,
    *,
    external_id: str | None,
    sync_id: str,
) -> Answer:
    """Build, send and classify one push; on a conflict naming the existing record, update it
    (once)."""
    adapter = ADAPTERS[kind]
    for _ in range(2):
        # The signature's timestamp is the wall clock's: the receiver checks it against its own.
        now_s = int(dt.datetime.now(dt.timezone.utc).timestamp())
        request = adapter.build(
            config, secret, view, external_id=external_id, sync_id=sync_id, now_s=now_s
        )
        answer = classify(
            kind, await transport.send(session, request, config.timeout_ms), external_id
        )
        if answer.verdict is not Verdict.UPDATE or external_id == answer.external_id:
            break
        external_id = answer.external_id
    if answer.verdict is Verdict.UPDATE:  # a second conflict: give up on this record
        return Answer(verdict=Verdict.FAILED, error="the CRM kept answering with a conflict")
    return answer


async def sync_lead(
    db: Database,
    session: aiohttp.ClientSession,
    lead_id: uuid.UUID,
    *,
    now: Callable[[], dt.datetime] | None = None,
) -> Synced:
    """Send the lead's due rows (idempotent: a row another attempt holds is left to it)."""
    clock = now or (lambda: dt.datetime.now(dt.timezone.utc))
    done = Synced()
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    crm_syncs.c.id, crm_syncs.c.connection_id, crm_syncs.c.event,
                    crm_syncs.c.status, crm_syncs.c.external_id, crm_syncs.c.next_attempt_at,
                    crm_connections.c.kind, crm_connections.c.config, crm_connections.c.secret,
                    crm_connections.c.party_id, crm_connections.c.active,
                )
                .select_from(crm_syncs.join(crm_connections, _OF_CONNECTION))
                .where(crm_syncs.c.lead_id == lead_id)
                .order_by(crm_syncs.c.created_at, crm_syncs.c.id)
            )
        ).all()  # fmt: skip
    by_connection: dict[uuid.UUID, list[Any]] = {}
    for row in rows:
        by_connection.setdefault(row.connection_id, []).append(row)
    for connection_rows in by_connection.values():
        await _sync_connection(db, session, lead_id, connection_rows, clock, done)
    return done


async def _sync_connection(
    db: Database,
    session: aiohttp.ClientSession,
    lead_id: uuid.UUID,
    rows: list[Any],
    clock: Callable[[], dt.datetime],
    done: Synced,
) -> None:
    external_id: str | None = None
    for row in rows:
        if row.status == SYNCED:
            external_id = row.external_id or external_id
            continue
        if row.status != PENDING:
            continue  # failed for good: the next event starts afresh
        started = clock()
        if not row.active:
            async with db.write() as conn:
                await outbox.finish(
                    conn, row.id, status=FAILED, now=started, error="connection deactivated"
                )
            done.failed += 1
            continue
        config = msgspec.convert(row.config, CrmConfig)
        lease = dt.timedelta(milliseconds=config.timeout_ms + LEASE_MARGIN_MS)
        async with db.write() as conn:
            attempt_no = await outbox.claim(conn, row.id, started, lease)
            view = await lead_view(conn, lead_id, row.event, row.party_id) if attempt_no else None
        if attempt_no is None:
            return  # not due yet, or another attempt holds it: later events wait behind it
        kind = CrmKind(row.kind)
        if view is None:
            answer = Answer(verdict=Verdict.FAILED, error="the lead or its event is gone")
        else:
            answer = await attempt(
                session, kind, config, row.secret, view, external_id=external_id,
                sync_id=str(row.id),
            )  # fmt: skip
        finished = clock()
        retry = answer.verdict is Verdict.RETRY and attempt_no < MAX_ATTEMPTS
        verdict = SYNCED if answer.verdict is Verdict.SYNCED else "retry" if retry else FAILED
        async with db.write() as conn:
            if verdict == SYNCED:
                await outbox.finish(
                    conn, row.id, status=SYNCED, now=finished, external_id=answer.external_id
                )
            elif retry:
                wait = backoff_ms(attempt_no, min_ms=BACKOFF_MIN_MS, max_ms=BACKOFF_MAX_MS)
                retry_at = finished + dt.timedelta(milliseconds=wait)
                await outbox.finish(
                    conn, row.id, status=PENDING, now=finished, error=answer.error,
                    retry_at=retry_at,
                )  # fmt: skip
            else:
                await outbox.finish(conn, row.id, status=FAILED, now=finished, error=answer.error)
        metrics.CRM_SYNCS.labels(kind.value, verdict).inc()
        log.info(
            "crm sync attempt",
            extra={"lead_id": str(lead_id), "sync_id": str(row.id), "event": row.event,
                   "verdict": verdict},
        )  # fmt: skip
        if verdict == SYNCED:
            done.synced += 1
            external_id = answer.external_id or external_id
        elif retry:
            done.retrying += 1
            done.retry_at = retry_at if done.retry_at is None else min(done.retry_at, retry_at)
            return  # later events wait for this one
        else:
            done.failed += 1


# --- what is pushed ------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    return (
        value.isoformat()
        if isinstance(value, dt.datetime)
        else (str(value) if isinstance(value, uuid.UUID) else value)
    )


async def lead_view(
    conn: Any, lead_id: uuid.UUID, event: str, party_id: uuid.UUID
) -> LeadView | None:
    """The lead and the event's details as ``party_id`` (its buyer or owning team) sees them;
    None when the lead, or the party's part in the event, cannot be found. A later owner's
    ``assigned:<n>`` is shown as ``assigned``, with the lead's owner at the time of sending."""
    event = base_event(event)
    lead = (
        await conn.execute(
            sa.select(leads, verticals.c.slug, lead_pii.c.pii)
            .select_from(
                leads.join(verticals, verticals.c.id == leads.c.vertical_id).outerjoin(
                    lead_pii, lead_pii.c.lead_id == leads.c.id
                )
            )
            .where(leads.c.id == lead_id)
        )
    ).first()
    if lead is None:
        return None
    details = await _details(conn, lead_id, event, party_id)
    if details is None:
        return None
    return LeadView(
        id=str(lead.id), vertical=lead.slug, fields=lead.fields or {}, pii=lead.pii or {},
        score=lead.score, priority=lead.priority, source=lead.source, channel=lead.channel,
        created_at=lead.created_at, event=event, details={k: _json(v) for k, v in details.items()},
    )  # fmt: skip


async def _details(
    conn: Any, lead_id: uuid.UUID, event: str, party_id: uuid.UUID
) -> dict[str, Any] | None:
    if event == EVENT_SOLD:
        row = (
            await conn.execute(
                sa.select(sales.c.id, sales.c.price_minor, sales.c.currency, sales.c.delivered_at)
                .where(sales.c.lead_id == lead_id, sales.c.buyer_id == party_id)
                .order_by(sales.c.created_at.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else {
            "sale_id": row.id, "price_minor": row.price_minor, "currency": row.currency,
            "delivered_at": row.delivered_at,
        }  # fmt: skip
    if event == EVENT_ASSIGNED:
        row = (
            await conn.execute(
                sa.select(
                    lead_owners.c.team_id, lead_owners.c.agent_id, lead_owners.c.owned_since
                ).where(lead_owners.c.lead_id == lead_id, lead_owners.c.team_id == party_id)
            )
        ).first()
        return None if row is None else {
            "team_id": row.team_id, "agent_id": row.agent_id, "owned_since": row.owned_since,
        }  # fmt: skip
    if event.startswith(OUTCOME_PREFIX):
        agents = sa.select(parties.c.id).where(parties.c.parent_id == party_id)
        c = lead_outcomes.c
        row = (
            await conn.execute(
                sa.select(c.kind, c.party_id, c.value_minor, c.currency, c.reason, c.occurred_at)
                .where(c.lead_id == lead_id, c.kind == event[len(OUTCOME_PREFIX):],
                       sa.or_(c.party_id == party_id, c.party_id.in_(agents)))
                .order_by(c.recorded_at.desc())
                .limit(1)
            )
        ).first()  # fmt: skip
        return None if row is None else {
            "kind": row.kind, "reported_by": row.party_id, "value_minor": row.value_minor,
            "currency": row.currency, "reason": row.reason, "occurred_at": row.occurred_at,
        }  # fmt: skip
    return None


async def sweep(db: Database, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """The leads with due rows (their message was lost, or their retry is due): ask for them."""
    async with db.read() as conn:
        due = await outbox.due_leads(conn, now, limit)
    for lead_id in due:
        outbox.enqueue(lead_id)
    return due
