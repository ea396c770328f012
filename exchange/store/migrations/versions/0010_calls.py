"""calls: call campaigns, the calls themselves, agents' call destinations, routes by channel

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 06:10:00

A call is a lead of the ``call`` channel (exchange.calls): a campaign that buys calls carries
its call terms (where to connect them, the minimum billable duration); each call pinged is a row
of ``calls`` from its bid to its end (connected before its expiry, billed only past the minimum
duration). Agents get the number or SIP address their team's calls ring. Team routes may name
the channel they take (null: every channel).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _when() -> sa.types.TypeEngine:
    return exchange.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("call", _json(), nullable=True))
    with op.batch_alter_table("agent_profiles") as batch:
        batch.add_column(sa.Column("call_destination", sa.String(length=200), nullable=True))
    with op.batch_alter_table("team_routes") as batch:
        batch.add_column(sa.Column("channel", sa.String(length=16), nullable=True))
        batch.drop_constraint("uq_team_routes_vertical_id_source", type_="unique")
        batch.create_unique_constraint(
            "uq_team_routes_vertical_id_source_channel", ["vertical_id", "source", "channel"]
        )
    op.create_table(
        "calls",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("supplier_id", sa.Uuid(), nullable=False),
        sa.Column("vertical_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=True),
        sa.Column("buyer_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("payout_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_duration_s", sa.Integer(), nullable=False),
        sa.Column("ring", sa.String(length=16), nullable=False),
        sa.Column("ring_timeout_s", sa.Integer(), nullable=True),
        sa.Column("destinations", _json(), nullable=False),
        sa.Column("holds", _json(), nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("meta", _json(), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("sale_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("connected_at", _when(), nullable=True),
        sa.Column("answered_at", _when(), nullable=True),
        sa.Column("ended_at", _when(), nullable=True),
        sa.ForeignKeyConstraint(["supplier_id"], ["parties.id"], name=op.f("fk_calls_supplier_id_parties")),
        sa.ForeignKeyConstraint(["vertical_id"], ["verticals.id"], name=op.f("fk_calls_vertical_id_verticals")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_calls_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("lead_id", name=op.f("uq_calls_lead_id")),
    )
    op.create_index(op.f("ix_calls_status_expires_at"), "calls", ["status", "expires_at"])
    op.create_index(op.f("ix_calls_supplier_id_created_at"), "calls", ["supplier_id", "created_at"])
    op.create_index(op.f("ix_calls_campaign_id_status"), "calls", ["campaign_id", "status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_campaign_id_status"), table_name="calls")
    op.drop_index(op.f("ix_calls_supplier_id_created_at"), table_name="calls")
    op.drop_index(op.f("ix_calls_status_expires_at"), table_name="calls")
    op.drop_table("calls")
    with op.batch_alter_table("team_routes") as batch:
        batch.drop_constraint("uq_team_routes_vertical_id_source_channel", type_="unique")
        batch.create_unique_constraint("uq_team_routes_vertical_id_source", ["vertical_id", "source"])
        batch.drop_column("channel")
    with op.batch_alter_table("agent_profiles") as batch:
        batch.drop_column("call_destination")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("call")
