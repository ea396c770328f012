"""channels: intake sources and batches, notifications, CRM sync, a lead's channel

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 04:30:00

Intake sources beside the native API (forms, ad platforms' lead webhooks, CSV, email) with
their mappings, and the batches (CSV uploads, emails) taken through them; the notifications
outbox and each team's notification rules, with agents' email addresses; CRM connections and
the per-lead sync outbox; and on each lead the channel and intake source it came through.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> sa.types.TypeEngine:
    return exchange.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "intake_sources",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("supplier_id", sa.Uuid(), nullable=False),
        sa.Column("vertical_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=True),
        sa.Column("mapping", _json(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=True),
        sa.Column("settings", _json(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["supplier_id"], ["parties.id"]),
        sa.ForeignKeyConstraint(["vertical_id"], ["verticals.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index(op.f("ix_intake_sources_supplier_id"), "intake_sources", ["supplier_id"])
    op.create_table(
        "intake_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("supplier_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("report", _json(), nullable=False),
        sa.Column("received_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["intake_sources.id"]),
        sa.ForeignKeyConstraint(["supplier_id"], ["parties.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_intake_batches_supplier_id_received_at"),
        "intake_batches", ["supplier_id", "received_at"],
    )  # fmt: skip
    op.create_table(
        "team_notifications",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["parties.id"]),
        sa.PrimaryKeyConstraint("team_id"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("party_id", sa.Uuid(), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=1000), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("sent_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(["team_id"], ["parties.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(
        op.f("ix_notifications_status_next_attempt_at"),
        "notifications", ["status", "next_attempt_at"],
    )  # fmt: skip
    op.create_index(
        op.f("ix_notifications_team_id_created_at"), "notifications", ["team_id", "created_at"]
    )
    op.create_table(
        "crm_connections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("secret", sa.String(length=500), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_crm_connections_party_id"), "crm_connections", ["party_id"])
    op.create_table(
        "crm_syncs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("next_attempt_at", _when(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["crm_connections.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("connection_id", "lead_id", "event"),
    )
    op.create_index(
        op.f("ix_crm_syncs_status_next_attempt_at"), "crm_syncs", ["status", "next_attempt_at"]
    )
    op.create_index(op.f("ix_crm_syncs_lead_id"), "crm_syncs", ["lead_id"])
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("intake_source_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("agent_profiles") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_profiles") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("intake_source_id")
        batch.drop_column("channel")
    op.drop_index(op.f("ix_crm_syncs_lead_id"), table_name="crm_syncs")
    op.drop_index(op.f("ix_crm_syncs_status_next_attempt_at"), table_name="crm_syncs")
    op.drop_table("crm_syncs")
    op.drop_index(op.f("ix_crm_connections_party_id"), table_name="crm_connections")
    op.drop_table("crm_connections")
    op.drop_index(op.f("ix_notifications_team_id_created_at"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_status_next_attempt_at"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("team_notifications")
    op.drop_index(op.f("ix_intake_batches_supplier_id_received_at"), table_name="intake_batches")
    op.drop_table("intake_batches")
    op.drop_index(op.f("ix_intake_sources_supplier_id"), table_name="intake_sources")
    op.drop_table("intake_sources")
