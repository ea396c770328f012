"""Intake sources and batches in the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.channels import mapping as mappings
from exchange.channels.mapping import Mapping
from exchange.channels.messages import (
    KEYED_CHANNELS,
    SECRET_SETTINGS,
    BatchView,
    Channel,
    RowReport,
    SourceIn,
    SourcePatch,
    SourceSettings,
    SourceView,
)
from exchange.errors import ApiError, FieldProblem, not_found, validation_error
from exchange.ids import new_id
from exchange.intake import verticals
from exchange.store.tables import intake_batches, intake_sources, parties
from exchange.store.tables import verticals as verticals_table

TOKEN_BYTES = 24  # the URL token: 192 random bits, unguessable
SECRET_BYTES = 24


class Source(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    supplier_id: uuid.UUID
    vertical_id: uuid.UUID
    vertical: str
    channel: Channel
    name: str
    source: str | None
    mapping: Mapping
    token: str
    secret_hash: str | None
    settings: SourceSettings
    active: bool  # the source, its supplier and its vertical are all active
    created_at: dt.datetime
    updated_at: dt.datetime


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(source: Source, given: str | None) -> bool:
    """Constant-time compare of hashes: the stored hash never meets the secret itself."""
    if source.secret_hash is None or not given:
        return False
    return hmac.compare_digest(secret_hash(given), source.secret_hash)


def path_of(channel: Channel, source_id: uuid.UUID, token: str) -> str:
    return {
        Channel.FORM: f"/v1/forms/{token}",
        Channel.GOOGLE_ADS: f"/v1/webhooks/google-ads/{token}",
        Channel.META: f"/v1/webhooks/meta/{token}",
        Channel.CSV: f"/v1/intake-sources/{source_id}/csv",
        Channel.EMAIL: f"/v1/inbound-email/{token}",
    }[channel]


def view(source: Source, secret: str | None = None) -> SourceView:
    shown = {
        k: v for k, v in msgspec.to_builtins(source.settings).items() if k not in SECRET_SETTINGS
    }
    return SourceView(
        id=source.id,
        supplier_id=source.supplier_id,
        vertical=source.vertical,
        channel=source.channel,
        name=source.name,
        source=source.source,
        mapping=source.mapping,
        token=source.token,
        path=path_of(source.channel, source.id, source.token),
        settings=shown,
        active=source.active,
        created_at=source.created_at,
        updated_at=source.updated_at,
        secret=secret,
    )


def _check(
    channel: Channel, mapping: Mapping, settings: SourceSettings, vertical: verticals.Vertical
) -> None:
    problems = mappings.check(mapping, vertical.fields)
    if channel is Channel.META and settings.app_secret is None:
        problems.append(
            FieldProblem("settings.app_secret", "required: Meta signs every notification with it")
        )
    if problems:
        raise validation_error(problems)


async def create(
    conn: AsyncConnection, supplier_id: uuid.UUID, data: SourceIn, now: dt.datetime
) -> SourceView:
    vertical = await verticals.get(conn, data.vertical)
    if vertical is None:
        raise ApiError(
            422,
            "validation_failed",
            "unknown vertical",
            fields=[FieldProblem("vertical", "no such vertical")],
        )
    supplier = (
        await conn.execute(sa.select(parties.c.kind).where(parties.c.id == supplier_id))
    ).first()
    if supplier is None or supplier.kind != "supplier":
        raise ApiError(
            422,
            "validation_failed",
            "not a supplier",
            fields=[FieldProblem("supplier_id", "no such supplier")],
        )
    _check(data.channel, data.mapping, data.settings, vertical)
    secret = data.secret
    made_up = None
    if secret is None and data.channel in KEYED_CHANNELS:
        secret = made_up = secrets.token_urlsafe(SECRET_BYTES)
    source_id = new_id()
    await conn.execute(
        intake_sources.insert().values(
            id=source_id,
            supplier_id=supplier_id,
            vertical_id=vertical.id,
            channel=data.channel.value,
            name=data.name,
            source=data.source,
            mapping=msgspec.to_builtins(data.mapping),
            token=secrets.token_urlsafe(TOKEN_BYTES),
            secret_hash=secret_hash(secret) if secret else None,
            settings=msgspec.to_builtins(data.settings),
            active=True,
            created_at=now,
            updated_at=now,
        )
    )
    source = await get(conn, source_id)
    assert source is not None
    return view(source, made_up)


async def update(
    conn: AsyncConnection, source: Source, data: SourcePatch, now: dt.datetime
) -> SourceView:
    values: dict = {"updated_at": now}
    mapping = data.mapping or source.mapping
    settings = data.settings or source.settings
    if data.settings is not None:  # secrets not sent again are kept
        kept = {
            k: getattr(source.settings, k)
            for k in SECRET_SETTINGS
            if getattr(data.settings, k) is None
        }
        settings = msgspec.structs.replace(data.settings, **kept)
    vertical = await verticals.get(conn, source.vertical)
    assert vertical is not None
    _check(source.channel, mapping, settings, vertical)
    values["mapping"] = msgspec.to_builtins(mapping)
    values["settings"] = msgspec.to_builtins(settings)
    if data.name is not None:
        values["name"] = data.name
    if data.source is not None:
        values["source"] = data.source
    if data.secret is not None:
        values["secret_hash"] = secret_hash(data.secret)
    if data.active is not None:
        values["active"] = data.active
    await conn.execute(
        intake_sources.update().where(intake_sources.c.id == source.id).values(**values)
    )
    fresh = await get(conn, source.id)
    assert fresh is not None
    return view(fresh)


def _query() -> sa.Select:
    return (
        sa.select(
            intake_sources,
            verticals_table.c.slug,
            verticals_table.c.active.label("vertical_active"),
            parties.c.active.label("supplier_active"),
        )
        .join(verticals_table, verticals_table.c.id == intake_sources.c.vertical_id)
        .join(parties, parties.c.id == intake_sources.c.supplier_id)
    )


def _source(row: sa.Row) -> Source:
    return Source(
        id=row.id,
        supplier_id=row.supplier_id,
        vertical_id=row.vertical_id,
        vertical=row.slug,
        channel=Channel(row.channel),
        name=row.name,
        source=row.source,
        mapping=msgspec.convert(row.mapping, Mapping),
        token=row.token,
        secret_hash=row.secret_hash,
        settings=msgspec.convert(row.settings or {}, SourceSettings),
        active=row.active and row.vertical_active and row.supplier_active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get(conn: AsyncConnection, source_id: uuid.UUID) -> Source | None:
    row = (await conn.execute(_query().where(intake_sources.c.id == source_id))).first()
    return _source(row) if row else None


async def by_token(conn: AsyncConnection, token: str, channel: Channel) -> Source:
    """The active source of this channel behind a URL token; 404 alike for unknown, inactive or
    another channel's token (a probe learns nothing)."""
    row = (await conn.execute(_query().where(intake_sources.c.token == token))).first()
    source = _source(row) if row else None
    if source is None or source.channel is not channel or not source.active:
        raise not_found("intake source")
    return source


async def list_sources(
    conn: AsyncConnection, *, supplier_id: uuid.UUID | None, limit: int, after: uuid.UUID | None
) -> list[SourceView]:
    query = _query().order_by(intake_sources.c.id).limit(limit)
    if supplier_id is not None:
        query = query.where(intake_sources.c.supplier_id == supplier_id)
    if after is not None:
        query = query.where(intake_sources.c.id > after)
    return [view(_source(row)) for row in await conn.execute(query)]


def batch_path(batch_id: uuid.UUID) -> str:
    return f"/v1/intake-batches/{batch_id}"


async def insert_batch(
    conn: AsyncConnection,
    source: Source,
    kind: str,
    name: str | None,
    report: list[RowReport],
    now: dt.datetime,
) -> BatchView:
    """A batch taken in already (an inline CSV file, an email)."""
    batch_id = new_id()
    counts = _counts(report)
    await conn.execute(
        intake_batches.insert().values(
            id=batch_id,
            source_id=source.id,
            supplier_id=source.supplier_id,
            kind=kind,
            name=name[:300] if name else None,
            rows=len(report),
            accepted=counts["accepted"],
            rejected=counts["rejected"] + counts["duplicate"],
            report=msgspec.to_builtins(report),
            received_at=now,
            status="done",
            processed=len(report),
            updated_at=now,
        )
    )
    return BatchView(
        id=batch_id,
        source_id=source.id,
        supplier_id=source.supplier_id,
        kind=kind,
        name=name,
        path=batch_path(batch_id),
        status="done",
        rows=len(report),
        processed=len(report),
        accepted=counts["accepted"],
        rejected=counts["rejected"] + counts["duplicate"],
        duplicates=counts["duplicate"],
        report=report,
        received_at=now,
    )


async def insert_pending_batch(
    conn: AsyncConnection,
    source: Source,
    name: str | None,
    pending_rows: list,
    rows: int,
    now: dt.datetime,
) -> BatchView:
    """A CSV batch whose rows a worker will take in (``exchange.channels.batches``)."""
    batch_id = new_id()
    await conn.execute(
        intake_batches.insert().values(
            id=batch_id,
            source_id=source.id,
            supplier_id=source.supplier_id,
            kind="csv",
            name=name[:300] if name else None,
            rows=rows,
            accepted=0,
            rejected=0,
            report=[],
            received_at=now,
            status="processing",
            pending_rows=pending_rows,
            processed=0,
            updated_at=now,
        )
    )
    return BatchView(
        id=batch_id,
        source_id=source.id,
        supplier_id=source.supplier_id,
        kind="csv",
        name=name[:300] if name else None,
        path=batch_path(batch_id),
        status="processing",
        rows=rows,
        processed=0,
        accepted=0,
        rejected=0,
        duplicates=0,
        report=[],
        received_at=now,
    )


async def add_progress(
    conn: AsyncConnection,
    batch_id: uuid.UUID,
    processed: int,
    report: list[RowReport],
    rest: list | None,
    now: dt.datetime,
) -> bool:
    """Append a chunk's reports and counts and keep only ``rest`` pending (done without), in
    one statement guarded by ``processed``: False when another run moved the batch first."""
    row = (
        await conn.execute(
            sa.select(intake_batches.c.report).where(
                intake_batches.c.id == batch_id,
                intake_batches.c.status == "processing",
                intake_batches.c.processed == processed,
            )
        )
    ).first()
    if row is None:
        return False
    counts = _counts(report)
    done = await conn.execute(
        intake_batches.update()
        .where(
            intake_batches.c.id == batch_id,
            intake_batches.c.status == "processing",
            intake_batches.c.processed == processed,
        )
        .values(
            report=list(row.report) + msgspec.to_builtins(report),
            accepted=intake_batches.c.accepted + counts["accepted"],
            rejected=intake_batches.c.rejected + counts["rejected"] + counts["duplicate"],
            processed=processed + len(report),
            pending_rows=rest if rest else None,
            status="processing" if rest else "done",
            updated_at=now,
        )
    )
    return done.rowcount == 1


def _counts(report: list[RowReport]) -> dict[str, int]:
    counts = {"accepted": 0, "rejected": 0, "duplicate": 0}
    for row in report:
        counts[row.status] += 1
    return counts


async def get_batch(
    conn: AsyncConnection, batch_id: uuid.UUID, *, after: int | None = None, limit: int
) -> BatchView | None:
    """The batch with a page of its report: the rows after line ``after``, ``limit`` at most."""
    row = (
        await conn.execute(sa.select(intake_batches).where(intake_batches.c.id == batch_id))
    ).first()
    if row is None:
        return None
    report = msgspec.convert(row.report, list[RowReport])
    duplicates = _counts(report)["duplicate"]
    if after is not None:
        report = [r for r in report if r.row > after]
    more = len(report) > limit
    report = report[:limit]
    return BatchView(
        id=row.id,
        source_id=row.source_id,
        supplier_id=row.supplier_id,
        kind=row.kind,
        name=row.name,
        path=batch_path(row.id),
        status=row.status,
        rows=row.rows,
        processed=row.processed if row.status != "done" else row.rows,
        accepted=row.accepted,
        rejected=row.rejected,
        duplicates=duplicates,
        report=report,
        received_at=row.received_at,
        report_next_after=report[-1].row if more else None,
    )
