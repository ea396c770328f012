"""auction: campaigns, buyer accounts, supplier terms, caps, pings, sales, traces

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:48:35.386496
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('traces',
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('decisions', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_id', 'stage', name=op.f('pk_traces'))
    )
    op.create_table('buyer_accounts',
    sa.Column('buyer_id', sa.Uuid(), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit_minor', sa.BigInteger(), nullable=False),
    sa.Column('margin', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('penalty_bps', sa.Integer(), nullable=False),
    sa.Column('last_won_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['parties.id'], name=op.f('fk_buyer_accounts_buyer_id_parties')),
    sa.PrimaryKeyConstraint('buyer_id', name=op.f('pk_buyer_accounts'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('buyer_id', sa.Uuid(), nullable=False),
    sa.Column('vertical_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('price_mode', sa.String(length=8), nullable=False),
    sa.Column('fixed_price_minor', sa.BigInteger(), nullable=True),
    sa.Column('floor_minor', sa.BigInteger(), nullable=False),
    sa.Column('max_sells', sa.Integer(), nullable=False),
    sa.Column('filters', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('schedule', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('caps', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('endpoints', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['parties.id'], name=op.f('fk_campaigns_buyer_id_parties')),
    sa.ForeignKeyConstraint(['vertical_id'], ['verticals.id'], name=op.f('fk_campaigns_vertical_id_verticals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_buyer_id'), ['buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_campaigns_vertical_id_active'), ['vertical_id', 'active'], unique=False)

    op.create_table('pings',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('supplier_id', sa.Uuid(), nullable=False),
    sa.Column('vertical_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('offer', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('payout_minor', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['supplier_id'], ['parties.id'], name=op.f('fk_pings_supplier_id_parties')),
    sa.ForeignKeyConstraint(['vertical_id'], ['verticals.id'], name=op.f('fk_pings_vertical_id_verticals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pings'))
    )
    with op.batch_alter_table('pings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pings_status_expires_at'), ['status', 'expires_at'], unique=False)

    op.create_table('supplier_terms',
    sa.Column('supplier_id', sa.Uuid(), nullable=False),
    sa.Column('margin', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('min_payout_minor', sa.BigInteger(), nullable=False),
    sa.Column('auction_mode', sa.String(length=16), nullable=True),
    sa.Column('pings_per_second', sa.Integer(), nullable=False),
    sa.Column('ping_burst', sa.Integer(), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['parties.id'], name=op.f('fk_supplier_terms_supplier_id_parties')),
    sa.PrimaryKeyConstraint('supplier_id', name=op.f('pk_supplier_terms'))
    )
    op.create_table('cap_counters',
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('window_key', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('spend_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_cap_counters_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'window_key', name=op.f('pk_cap_counters'))
    )
    op.create_table('cap_holds',
    sa.Column('ping_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('window_key', sa.String(length=64), nullable=False),
    sa.Column('spend_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_cap_holds_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['ping_id'], ['pings.id'], name=op.f('fk_cap_holds_ping_id_pings')),
    sa.PrimaryKeyConstraint('ping_id', 'campaign_id', 'window_key', name=op.f('pk_cap_holds'))
    )
    op.create_table('sales',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('buyer_id', sa.Uuid(), nullable=False),
    sa.Column('supplier_id', sa.Uuid(), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('payout_minor', sa.BigInteger(), nullable=False),
    sa.Column('margin_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buyer_id'], ['parties.id'], name=op.f('fk_sales_buyer_id_parties')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_sales_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_sales_lead_id_leads')),
    sa.ForeignKeyConstraint(['supplier_id'], ['parties.id'], name=op.f('fk_sales_supplier_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales')),
    sa.UniqueConstraint('lead_id', 'buyer_id', name=op.f('uq_sales_lead_id_buyer_id'))
    )
    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sales_buyer_id_created_at'), ['buyer_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sales_campaign_id_created_at'), ['campaign_id', 'created_at'], unique=False)

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ping_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('sold_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_leads_ping_id'), ['ping_id'])

    with op.batch_alter_table('verticals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('margin', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('auction_mode', sa.String(length=16), server_default='free_pick', nullable=False))




def downgrade() -> None:

    with op.batch_alter_table('verticals', schema=None) as batch_op:
        batch_op.drop_column('auction_mode')
        batch_op.drop_column('margin')

    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_leads_ping_id'), type_='unique')
        batch_op.drop_column('sold_count')
        batch_op.drop_column('ping_id')

    with op.batch_alter_table('sales', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sales_campaign_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_sales_buyer_id_created_at'))

    op.drop_table('sales')
    op.drop_table('cap_holds')
    op.drop_table('cap_counters')
    op.drop_table('supplier_terms')
    with op.batch_alter_table('pings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pings_status_expires_at'))

    op.drop_table('pings')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_vertical_id_active'))
        batch_op.drop_index(batch_op.f('ix_campaigns_buyer_id'))

    op.drop_table('campaigns')
    op.drop_table('buyer_accounts')
    op.drop_table('traces')

