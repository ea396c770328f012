"""delivery: outbox, attempts, sale status, lead walk

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 20:28:34.993759
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('deliveries',
    sa.Column('sale_id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('buyer_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('leased_until', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['parties.id'], name=op.f('fk_deliveries_buyer_id_parties')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_deliveries_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_deliveries_lead_id_leads')),
    sa.ForeignKeyConstraint(['sale_id'], ['sales.id'], name=op.f('fk_deliveries_sale_id_sales')),
    sa.PrimaryKeyConstraint('sale_id', name=op.f('pk_deliveries'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_status_next_attempt_at'), ['status', 'next_attempt_at'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('sale_id', sa.Uuid(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['sale_id'], ['deliveries.sale_id'], name=op.f('fk_delivery_attempts_sale_id_deliveries')),
    sa.PrimaryKeyConstraint('sale_id', 'attempt', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('walk', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))

    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='delivered', nullable=False))
        batch_op.add_column(sa.Column('delivered_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('status')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_column('walk')

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_status_next_attempt_at'))

    op.drop_table('deliveries')

