"""Migrations build exactly the schema tables.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from exchange.store import migrate
from exchange.store.tables import metadata


def _diff(settings) -> list:
    engine = sa.create_engine(settings.sync_database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(ctx, metadata)
    finally:
        engine.dispose()


def _tables(settings) -> set[str]:
    engine = sa.create_engine(settings.sync_database_url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_tables(backend):
    assert _diff(backend) == []
    assert _tables(backend) == {t.name for t in metadata.sorted_tables}


def test_downgrade_to_nothing_and_back(backend):
    migrate.downgrade(backend, "base")
    assert _tables(backend) == set()
    migrate.upgrade(backend)
    assert _diff(backend) == []
