"""Migrations build exactly the schema tables.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_large_json_written_per_lead_is_compressed_with_lz4(backend):
    # Half pglz's insert cost for a trace of a few hundred entries (docs/performance.md).
    engine = sa.create_engine(backend.sync_database_url)
    try:
        with engine.connect() as conn:
            found = dict(
                conn.execute(
                    sa.text(
                        "SELECT attrelid::regclass::text || '.' || attname, attcompression FROM pg_attribute"
                        " WHERE (attrelid, attname) IN (('traces'::regclass, 'decisions'), ('pings'::regclass, 'offer'))"
                    )
                ).all()
            )
    finally:
        engine.dispose()
    assert found == {"traces.decisions": "l", "pings.offer": "l"}
