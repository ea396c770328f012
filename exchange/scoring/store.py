"""A vertical's scoring config in the database (``verticals.scoring``) and scoring a lead with
the cached source history."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange.errors import ApiError, FieldProblem, not_found
from exchange.intake import verticals as vertical_store
from exchange.scoring.history import SourceHistory
from exchange.scoring.rules import LeadScore, ScoringConfig, score, validate_config
from exchange.store.tables import verticals


def config_of(stored: Any) -> ScoringConfig | None:
    """The config as ``verticals.scoring`` holds it (JSON), or None: the vertical scores nothing."""
    return msgspec.convert(stored, ScoringConfig) if stored is not None else None


async def get_config(conn: AsyncConnection, slug: str) -> ScoringConfig | None:
    row = (
        await conn.execute(sa.select(verticals.c.scoring).where(verticals.c.slug == slug))
    ).first()
    if row is None:
        raise not_found("vertical")
    return config_of(row.scoring)


def check(config: ScoringConfig, vertical: vertical_store.Vertical) -> None:
    problems = validate_config(config, vertical.fields)
    if problems:
        raise ApiError(
            422,
            "validation_failed",
            "the scoring config is invalid for this vertical",
            fields=[FieldProblem(path, reason) for path, reason in problems],
        )


async def put_config(
    conn: AsyncConnection, slug: str, config: ScoringConfig | None
) -> ScoringConfig | None:
    """Store (None: remove) the vertical's config after checking it against its fields.

    The vertical's version stays (its fields did not change) but ``updated_at`` moves, which is
    what tells every process's market snapshot to reload."""
    vertical = await vertical_store.get(conn, slug)
    if vertical is None:
        raise not_found("vertical")
    if config is not None:
        check(config, vertical)
    await conn.execute(
        verticals.update()
        .where(verticals.c.id == vertical.id)
        .values(
            scoring=msgspec.to_builtins(config) if config is not None else None,
            updated_at=dt.datetime.now(dt.timezone.utc),
        )
    )
    return config


async def score_lead(
    config: ScoringConfig | None,
    history: SourceHistory,
    vertical_id: uuid.UUID,
    fields: Mapping[str, Any],
    source: str | None,
) -> LeadScore | None:
    """The lead's score, or None (no work at all) when its vertical scores nothing."""
    if config is None:
        return None
    source_counts, vertical_counts = await history.counts(vertical_id, source)
    return score(config, fields, source_counts, vertical_counts)
