"""The CRM outbox: one ``crm_syncs`` row per (connection, lead, event), written in the event's
own transaction, so a sale, an assignment or an outcome that commits is pushed, and one that
rolls back never is. After the commit a worker is asked to send the lead's rows (the message
may be lost: the sweeper finds due rows and asks again).

``record`` sits on hot paths (every delivered sale): for a party with no connection it costs
no round trip, only a look at this process's cached set of parties with one (refreshed every
``CONNECTED_TTL_S``, and at once in the process that changes a connection).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.crm.messages import DEFAULT_EVENTS, PENDING, wants
from exchange.ids import new_id
from exchange.store.db import after_commit, dialect_insert
from exchange.store.tables import crm_connections, crm_syncs

log = logging.getLogger(__name__)

CONNECTED_TTL_S = 30.0  # another process's new connection is seen within this

# database URL -> (read at, monotonic; the parties with an active connection)
_connected: dict[str, tuple[float, frozenset[uuid.UUID]]] = {}


def forget_connected() -> None:
    """Drop the cached set of parties with a connection (after a connection changes)."""
    _connected.clear()


async def connected_parties(conn: AsyncConnection) -> frozenset[uuid.UUID]:
    key = str(conn.engine.url)
    cached = _connected.get(key)
    if cached is not None and time.monotonic() - cached[0] < CONNECTED_TTL_S:
        return cached[1]
    rows = await conn.execute(
        sa.select(crm_connections.c.party_id).where(crm_connections.c.active).distinct()
    )
    parties = frozenset(rows.scalars())
    _connected[key] = (time.monotonic(), parties)
    return parties


async def record(
    conn: AsyncConnection,
    party_id: uuid.UUID | None,
    lead_id: uuid.UUID,
    event: str,
    now: dt.datetime,
) -> int:
    """The hook: queue ``event`` on the lead for each of the party's connections that wants
    it (idempotent per connection, lead and event). Call inside the event's transaction.
    Returns how many rows it wrote."""
    if party_id is None or party_id not in await connected_parties(conn):
        return 0
    rows = await conn.execute(
        sa.select(crm_connections.c.id, crm_connections.c.config).where(
            crm_connections.c.party_id == party_id, crm_connections.c.active
        )
    )
    # A stored config was validated when written: only its events are read here.
    wanted = [
        row.id for row in rows if wants((row.config or {}).get("events", DEFAULT_EVENTS), event)
    ]
    written = 0
    for connection_id in wanted:
        inserted = await conn.execute(
            dialect_insert(conn, crm_syncs)
            .values(
                id=new_id(),
                connection_id=connection_id,
                lead_id=lead_id,
                event=event,
                status=PENDING,
                attempts=0,
                last_error=None,
                external_id=None,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )  # fmt: skip
            .on_conflict_do_nothing(
                index_elements=[crm_syncs.c.connection_id, crm_syncs.c.lead_id, crm_syncs.c.event]
            )
        )
        written += inserted.rowcount or 0
    if written:
        _send_after_commit(conn, lead_id)
    return written


def _send_after_commit(conn: AsyncConnection, lead_id: uuid.UUID) -> None:
    """Ask the worker for the lead once this transaction committed (``db.after_commit``)."""
    after_commit(conn, "crm", _enqueue_all, set).add(lead_id)


def _enqueue_all(lead_ids: set[uuid.UUID]) -> None:
    for lead_id in lead_ids:
        enqueue(lead_id)


def enqueue(lead_id: uuid.UUID, delay_ms: int = 0) -> None:
    """Ask a worker to send the lead's due rows. A lost message loses nothing (the sweeper)."""
    from exchange.worker import actors

    try:
        if actors.sync_crm is not None:
            actors.sync_crm.send_with_options(args=(str(lead_id),), delay=max(0, delay_ms) or None)
    except Exception:  # the broker is down: the sweeper will
        log.warning("could not enqueue sync_crm; the sweeper will", exc_info=True)


# --- the sender's side ---------------------------------------------------------------------------


async def claim(
    conn: AsyncConnection, sync_id: uuid.UUID, now: dt.datetime, lease: dt.timedelta
) -> int | None:
    """Take the row's next attempt if it is due (a copy of the message, or the sweeper, finds
    it leased until ``now + lease``); its attempt number, or None."""
    row = (
        await conn.execute(
            crm_syncs.update()
            .where(
                crm_syncs.c.id == sync_id,
                crm_syncs.c.status == PENDING,
                crm_syncs.c.next_attempt_at <= now,
            )
            .values(attempts=crm_syncs.c.attempts + 1, next_attempt_at=now + lease, updated_at=now)
            .returning(crm_syncs.c.attempts)
        )
    ).first()
    return row.attempts if row else None


async def finish(
    conn: AsyncConnection,
    sync_id: uuid.UUID,
    *,
    status: str,
    now: dt.datetime,
    error: str | None = None,
    external_id: str | None = None,
    retry_at: dt.datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status, "last_error": error, "updated_at": now, "next_attempt_at": retry_at,
    }  # fmt: skip
    if external_id is not None:
        values["external_id"] = external_id
    await conn.execute(
        crm_syncs.update()
        .where(crm_syncs.c.id == sync_id, crm_syncs.c.status == PENDING)
        .values(**values)
    )


async def due_leads(conn: AsyncConnection, now: dt.datetime, limit: int) -> list[uuid.UUID]:
    """Leads with a pending row whose attempt is due (its message lost, or its retry come)."""
    rows = await conn.execute(
        sa.select(crm_syncs.c.lead_id)
        .where(crm_syncs.c.status == PENDING, crm_syncs.c.next_attempt_at <= now)
        .group_by(crm_syncs.c.lead_id)
        .order_by(sa.func.min(crm_syncs.c.next_attempt_at))
        .limit(limit)
    )
    return [row.lead_id for row in rows]
