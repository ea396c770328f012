"""hot path: an index of the sales in flight; lz4 for the large JSON written per lead

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:40:00

Every auction reads each candidate buyer's money in flight (its sales still being
delivered): without this partial index PostgreSQL scanned all of the buyer's sales.

On PostgreSQL (14+, built with lz4, as Debian's and the official images are) the trace and
the ping offer, a few tens of KB per lead, are compressed with lz4 instead of pglz: about
half the insert cost, and smaller. Rows already stored keep their compression.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

IN_FLIGHT = sa.text("status = 'delivering'")
LZ4_COLUMNS = (("traces", "decisions"), ("pings", "offer"))


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
    ).first()
    return found is not None


def upgrade() -> None:
    op.create_index("ix_sales_in_flight", "sales", ["buyer_id"], postgresql_where=IN_FLIGHT, sqlite_where=IN_FLIGHT)
    if _lz4_available():
        for table, column in LZ4_COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        for table, column in LZ4_COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION pglz")
    op.drop_index("ix_sales_in_flight", table_name="sales")
