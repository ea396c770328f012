"""smarter routing: outcomes, conversion counts, account owners, lead scores, team routing

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 03:35:00

Outcomes that agents and buyers report, the conversion counts routing learns from, who owns
a person or company (for account-based routing), each lead's score and priority, a vertical's
scoring rules, a team's routing rules (hybrid schedules, score tiers, fairness floor), agents'
tiers, and why routing chose an owner.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> sa.types.TypeEngine:
    return exchange.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lead_outcomes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("party_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", _when(), nullable=False),
        sa.Column("recorded_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id", "party_id", "kind"),
    )
    op.create_index(
        op.f("ix_lead_outcomes_party_id_recorded_at"), "lead_outcomes", ["party_id", "recorded_at"]
    )
    op.create_table(
        "conversion_stats",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("segment", sa.String(length=200), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "segment"),
    )
    op.create_table(
        "account_owners",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("owned_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["parties.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["parties.id"]),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"]),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("verticals") as batch:
        batch.add_column(sa.Column("scoring", _json(), nullable=True))
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("score", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("priority", sa.String(length=16), nullable=True))
    with op.batch_alter_table("team_configs") as batch:
        batch.add_column(sa.Column("routing", _json(), nullable=True))
    with op.batch_alter_table("lead_owners") as batch:
        batch.add_column(sa.Column("segment", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("decision", _json(), nullable=True))
        batch.add_column(sa.Column("account_keys", _json(), nullable=True))
    with op.batch_alter_table("agent_profiles") as batch:
        batch.add_column(sa.Column("tier", sa.Integer(), server_default="1", nullable=False))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("rank_by_conversion", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("conversion_floor_pct", sa.Integer(), server_default="50", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("conversion_floor_pct")
        batch.drop_column("rank_by_conversion")
    with op.batch_alter_table("agent_profiles") as batch:
        batch.drop_column("tier")
    with op.batch_alter_table("lead_owners") as batch:
        batch.drop_column("account_keys")
        batch.drop_column("decision")
        batch.drop_column("segment")
    with op.batch_alter_table("team_configs") as batch:
        batch.drop_column("routing")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("priority")
        batch.drop_column("score")
    with op.batch_alter_table("verticals") as batch:
        batch.drop_column("scoring")
    op.drop_table("account_owners")
    op.drop_table("conversion_stats")
    op.drop_index(op.f("ix_lead_outcomes_party_id_recorded_at"), table_name="lead_outcomes")
    op.drop_table("lead_outcomes")
