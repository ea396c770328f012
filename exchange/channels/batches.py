"""Large CSV files, taken in by a worker a chunk at a time.

A file of more than ``CSV_INLINE_ROWS_MAX`` rows is only checked in the request (its shape,
as for any file), stored with its rows as ``pending_rows`` and answered at once (202). The
``take_in_batch`` actor then takes ``CHUNK_ROWS`` rows at a time through the same path as an
inline row and, in one transaction, appends their reports, adds to the counters, trims
``pending_rows`` and moves ``updated_at``; then it asks for the next chunk.

A chunk may run twice (a worker died after taking rows in but before that commit, or the sweep
re-sent a batch that was only slow). Each row's idempotency key is the batch id and the row's
line, so a replayed row answers the lead it made the first time; the progress commit only
counts when ``processed`` is still what the chunk started from, so a report never holds a row
twice. A batch whose message was lost stops moving; the sweep (run with ``sweep_deliveries``)
sends it again once it has not moved for ``STALLED_AFTER``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.context import Context
from exchange.channels import payloads, store
from exchange.channels.intake import idempotency_key
from exchange.channels.mapping import Item
from exchange.channels.messages import BatchView, RowReport
from exchange.settings import Settings
from exchange.store.db import Database
from exchange.store.tables import intake_batches

log = logging.getLogger(__name__)

# Files up to this many rows are taken in inside the request (201 with the report); larger
# ones by the worker (202, then GET /v1/intake-batches/{id}). ~10-20 ms a row: 100 rows keep
# the request within a couple of seconds.
CSV_INLINE_ROWS_MAX = 100
# Rows a message takes in before it commits its progress and asks for the next chunk.
CHUNK_ROWS = 200
# ...or fewer, once a chunk has run this long (a supplier's rate limit can make rows wait):
# each message stays well inside the actor's time limit and the batch's updated_at moves.
CHUNK_TIME_BUDGET_S = 60.0
# A processing batch that has not moved for this long lost its message (or its worker): the
# sweep sends it again. Well above a chunk's budget (plus one slow row), so a batch that is
# only slow is rarely sent twice (and a second sender is harmless: see the module's notes).
STALLED_AFTER = dt.timedelta(minutes=10)
SWEEP_BATCHES_MAX = 100  # stalled batches re-sent per sweep

PROCESSING, DONE = "processing", "done"


class PendingRow(msgspec.Struct, array_like=True, frozen=True):
    """A CSV row waiting in ``pending_rows``: its line, its (column, value) pairs, whether it
    had more values than columns. Compact: a 10,000-row file is stored once per chunk."""

    line: int
    items: list[tuple[str, str]]
    extra: bool


def pending(row: payloads.CsvRow) -> PendingRow:
    return PendingRow(row.line, [(item.key, item.value) for item in row.items], row.extra)


def csv_row(row: PendingRow) -> payloads.CsvRow:
    return payloads.CsvRow(row.line, [Item(k, v, k) for k, v in row.items], row.extra)


def row_key(batch_id: uuid.UUID, line: int) -> str:
    """The row's idempotency key: the same row of the same batch is the same lead."""
    return idempotency_key("csv", f"{batch_id}:{line}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def start(
    ctx: Context, source: store.Source, rows: list[payloads.CsvRow], name: str | None
) -> BatchView:
    """Store the batch with every row pending and ask a worker for its first chunk."""
    async with ctx.db.write() as conn:
        batch = await store.insert_pending_batch(
            conn, source, name, msgspec.to_builtins([pending(r) for r in rows]), len(rows), _now()
        )
    enqueue(batch.id)  # after the commit: the worker must find the batch
    return batch


def enqueue(batch_id: uuid.UUID) -> None:
    """Ask a worker for the batch's next chunk. A lost message loses nothing: the sweep."""
    from exchange.worker import actors

    try:
        if actors.take_in_batch is not None:
            actors.take_in_batch.send(str(batch_id))
    except Exception:  # the broker is down: the sweep will
        log.warning("could not enqueue take_in_batch; the sweep will", exc_info=True)


async def take_in(
    ctx: Context, batch_id: uuid.UUID, take_row: Callable[..., Awaitable[RowReport]]
) -> bool:
    """Take in the batch's next chunk; True when rows are left for another message.

    ``take_row(ctx, source, row, key=..., body=...)`` is the inline rows' own function."""
    async with ctx.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(
                    intake_batches.c.source_id,
                    intake_batches.c.status,
                    intake_batches.c.pending_rows,
                    intake_batches.c.processed,
                ).where(intake_batches.c.id == batch_id)
            )
        ).first()
        source = await store.get(conn, row.source_id) if row is not None else None
    if row is None or row.status != PROCESSING:
        return False  # unknown, or finished by an earlier run of this message
    rows = msgspec.convert(row.pending_rows or [], list[PendingRow])
    if source is None or not source.active:
        # The source (or its supplier) was turned off meanwhile: no more of its leads.
        report = _refused(
            rows, "source_inactive", "the intake source was turned off before this row was taken in"
        )
        return await _progress(ctx.db, batch_id, row.processed, report, [])
    report = []
    started = time.monotonic()
    for waiting in rows[:CHUNK_ROWS]:
        # The raw row is the request: a replay matches even if the mapping changed meanwhile.
        body = msgspec.json.encode(waiting)
        report.append(
            await take_row(
                ctx, source, csv_row(waiting), key=row_key(batch_id, waiting.line), body=body
            )
        )
        if time.monotonic() - started >= CHUNK_TIME_BUDGET_S:
            break
    return await _progress(ctx.db, batch_id, row.processed, report, rows[len(report) :])


def _refused(rows: list[PendingRow], code: str, message: str) -> list[RowReport]:
    return [RowReport(row=r.line, status="rejected", code=code, message=message) for r in rows]


async def _progress(
    db: Database,
    batch_id: uuid.UUID,
    processed: int,
    report: list[RowReport],
    rest: list[PendingRow],
) -> bool:
    async with db.write() as conn:
        moved = await store.add_progress(
            conn, batch_id, processed, report, msgspec.to_builtins(rest) if rest else None, _now()
        )
    if not moved:  # another run of this batch committed first: its report stands
        log.info("batch chunk already taken in", extra={"batch_id": str(batch_id)})
        return False
    return bool(rest)


async def sweep_stalled(db: Database, settings: Settings, now: dt.datetime | None = None) -> int:
    """Send again the batches that stopped moving (their message or worker was lost).

    A batch received longer ago than idempotency answers are kept is finished instead, its
    rows left refused: its rows' keys may be forgotten, so taking them in again could make a
    second lead of a row taken in before the stop."""
    now = now or _now()
    keys_kept_since = now - dt.timedelta(hours=settings.idempotency_ttl_hours)
    async with db.write() as conn:
        stalled = await _stalled(conn, now)
        if stalled:  # postponed: the next sweep leaves them to the message it sends now
            await conn.execute(
                intake_batches.update()
                .where(intake_batches.c.id.in_([batch_id for batch_id, _ in stalled]))
                .values(updated_at=now)
            )
    for batch_id, received_at in stalled:
        if received_at < keys_kept_since:
            await _give_up(db, batch_id)
        else:
            enqueue(batch_id)
    if stalled:
        log.info("re-sent stalled intake batches", extra={"count": len(stalled)})
    return len(stalled)


async def _stalled(conn: AsyncConnection, now: dt.datetime) -> list[tuple[uuid.UUID, dt.datetime]]:
    query = (
        sa.select(intake_batches.c.id, intake_batches.c.received_at)
        .where(
            intake_batches.c.status == PROCESSING,
            intake_batches.c.updated_at < now - STALLED_AFTER,
        )
        .order_by(intake_batches.c.updated_at)
        .limit(SWEEP_BATCHES_MAX)
    )
    return [(row.id, row.received_at) for row in await conn.execute(query)]


async def _give_up(db: Database, batch_id: uuid.UUID) -> None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(intake_batches.c.pending_rows, intake_batches.c.processed).where(
                    intake_batches.c.id == batch_id, intake_batches.c.status == PROCESSING
                )
            )
        ).first()
    if row is None:
        return
    rows = msgspec.convert(row.pending_rows or [], list[PendingRow])
    message = "the batch stopped for longer than its rows' idempotency keys are kept; send it again"
    await _progress(db, batch_id, row.processed, _refused(rows, "batch_expired", message), [])
    log.warning("gave up a stalled intake batch", extra={"batch_id": str(batch_id)})
