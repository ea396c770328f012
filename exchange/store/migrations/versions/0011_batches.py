"""batches: CSV batches processed by workers

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 06:45:00

A large CSV upload is answered at once (202) and its rows are taken in by a worker in chunks:
the batch keeps its status, the rows still to take in, how many were processed, and when it
last moved (a batch that stops moving is picked up again by the sweep).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("intake_batches") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="done"))
        batch.add_column(sa.Column("pending_rows", _json(), nullable=True))
        batch.add_column(sa.Column("processed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("updated_at", exchange.store.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(op.f("ix_intake_batches_status_updated_at"), "intake_batches", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_intake_batches_status_updated_at"), table_name="intake_batches")
    with op.batch_alter_table("intake_batches") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("processed")
        batch.drop_column("pending_rows")
        batch.drop_column("status")
