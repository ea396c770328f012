"""indexes: notifications by lead, leads by time

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 08:00:00

The unowned-lead sweep asks whether a lead was already told (notifications by lead_id), and
the reports and the operators' flow read leads by creation time across suppliers and
verticals (leads by created_at alone). On PostgreSQL both are built CONCURRENTLY, outside the
migration's transaction, so a large table keeps taking writes while they build.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_notifications_lead_id", "notifications", ["lead_id"]),
    ("ix_leads_created_at", "leads", ["created_at"]),
)


def _concurrently() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    if _concurrently():
        with op.get_context().autocommit_block():
            for name, table, columns in INDEXES:
                op.create_index(name, table, columns, postgresql_concurrently=True, if_not_exists=True)
        return
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    if _concurrently():
        with op.get_context().autocommit_block():
            for name, table, _ in INDEXES:
                op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        return
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
