"""Verticals in the database: create, change, read, and the seed set that ships."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.auction.margin import MarginRule
from exchange.auction.ranking import Mode
from exchange.errors import ApiError, FieldProblem, not_found
from exchange.ids import new_id
from exchange.intake.fields import FieldSpec, VerticalSpec, check_spec
from exchange.store.tables import verticals

SEED_DIR = Path(__file__).parent / "verticals"
_fields_decoder = msgspec.json.Decoder(list[FieldSpec])


class Vertical(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    currency: str
    dedupe_window_days: int
    fields: list[FieldSpec]
    margin: MarginRule | None  # the exchange's default margin here; None: no margin
    auction_mode: Mode
    version: int
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class VerticalPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    active: bool | None = None


def _vertical(row: sa.Row) -> Vertical:
    return Vertical(
        id=row.id,
        slug=row.slug,
        name=row.name,
        description=row.description,
        currency=row.currency,
        dedupe_window_days=row.dedupe_window_days,
        fields=msgspec.convert(row.fields, list[FieldSpec]),
        margin=msgspec.convert(row.margin, MarginRule) if row.margin is not None else None,
        auction_mode=Mode(row.auction_mode),
        version=row.version,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check(spec: VerticalSpec, fields_max: int) -> None:
    problems = check_spec(spec, fields_max=fields_max)
    if problems:
        raise ApiError(
            422,
            "validation_failed",
            "the vertical's definition is invalid",
            fields=[FieldProblem(p.path, p.reason) for p in problems],
        )


def _columns(spec: VerticalSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "description": spec.description,
        "currency": spec.currency,
        "dedupe_window_days": spec.dedupe_window_days,
        "fields": msgspec.to_builtins(spec.fields),
        # As the tagged JSON the API takes, which is also what the auction's cache converts.
        "margin": msgspec.to_builtins(spec.margin) if spec.margin is not None else None,
        "auction_mode": spec.auction_mode.value,
    }


async def create(conn: AsyncConnection, spec: VerticalSpec, *, fields_max: int) -> Vertical:
    check(spec, fields_max)
    if await get(conn, spec.slug) is not None:
        raise ApiError(409, "already_exists", f"vertical {spec.slug!r} already exists")
    now = dt.datetime.now(dt.timezone.utc)
    await conn.execute(
        verticals.insert().values(
            id=new_id(),
            slug=spec.slug,
            version=1,
            active=True,
            created_at=now,
            updated_at=now,
            **_columns(spec),
        )
    )
    created = await get(conn, spec.slug)
    assert created is not None
    return created


async def replace(
    conn: AsyncConnection, slug: str, spec: VerticalSpec, *, fields_max: int
) -> Vertical:
    """A new definition of an existing vertical; its version goes up by one."""
    check(spec, fields_max)
    if spec.slug != slug:
        raise ApiError(
            422,
            "validation_failed",
            "a vertical's slug cannot change",
            fields=[FieldProblem("slug", f"must stay {slug!r}")],
        )
    result = await conn.execute(
        verticals.update()
        .where(verticals.c.slug == slug)
        .values(
            version=verticals.c.version + 1,
            updated_at=dt.datetime.now(dt.timezone.utc),
            **_columns(spec),
        )
    )
    if result.rowcount == 0:
        raise not_found("vertical")
    updated = await get(conn, slug)
    assert updated is not None
    return updated


async def set_active(conn: AsyncConnection, slug: str, active: bool) -> Vertical:
    result = await conn.execute(
        verticals.update()
        .where(verticals.c.slug == slug)
        .values(active=active, updated_at=dt.datetime.now(dt.timezone.utc))
    )
    if result.rowcount == 0:
        raise not_found("vertical")
    updated = await get(conn, slug)
    assert updated is not None
    return updated


async def get(conn: AsyncConnection, slug: str) -> Vertical | None:
    row = (await conn.execute(sa.select(verticals).where(verticals.c.slug == slug))).first()
    return _vertical(row) if row else None


async def list_all(conn: AsyncConnection) -> list[Vertical]:
    rows = await conn.execute(sa.select(verticals).order_by(verticals.c.slug))
    return [_vertical(row) for row in rows]


def seed_specs() -> list[VerticalSpec]:
    """The verticals that ship with the exchange (``intake/verticals/*.json``)."""
    decoder = msgspec.json.Decoder(VerticalSpec)
    return [decoder.decode(path.read_bytes()) for path in sorted(SEED_DIR.glob("*.json"))]


async def seed(conn: AsyncConnection, *, fields_max: int) -> list[str]:
    """Create the shipped verticals that do not exist yet; returns the slugs created."""
    created = []
    for spec in seed_specs():
        if await get(conn, spec.slug) is None:
            await create(conn, spec, fields_max=fields_max)
            created.append(spec.slug)
    return created
