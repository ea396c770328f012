"""returns: buyer returns, campaign return policy, supplier return terms

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 20:40:38.635399
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('returns',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('sale_id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('buyer_id', sa.Uuid(), nullable=False),
    sa.Column('supplier_id', sa.Uuid(), nullable=False),
    sa.Column('campaign_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('decision_note', sa.String(length=1000), nullable=True),
    sa.Column('claw_back', sa.Boolean(), nullable=True),
    sa.Column('entry_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['buyer_id'], ['parties.id'], name=op.f('fk_returns_buyer_id_parties')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_returns_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['decided_by'], ['parties.id'], name=op.f('fk_returns_decided_by_parties')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_returns_entry_id_journal_entries')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_returns_lead_id_leads')),
    sa.ForeignKeyConstraint(['sale_id'], ['sales.id'], name=op.f('fk_returns_sale_id_sales')),
    sa.ForeignKeyConstraint(['supplier_id'], ['parties.id'], name=op.f('fk_returns_supplier_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_returns')),
    sa.UniqueConstraint('sale_id', name=op.f('uq_returns_sale_id'))
    )
    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_returns_buyer_id_requested_at'), ['buyer_id', 'requested_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_returns_campaign_id_buyer_id'), ['campaign_id', 'buyer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_returns_status_requested_at'), ['status', 'requested_at'], unique=False)

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_window_days', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('return_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('max_return_rate_bps', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('supplier_terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('return_payout', sa.String(length=16), server_default='claw_back', nullable=False))
        batch_op.add_column(sa.Column('hold_days', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('supplier_terms', schema=None) as batch_op:
        batch_op.drop_column('hold_days')
        batch_op.drop_column('return_payout')

    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('max_return_rate_bps')
        batch_op.drop_column('return_reasons')
        batch_op.drop_column('return_window_days')

    with op.batch_alter_table('returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_returns_status_requested_at'))
        batch_op.drop_index(batch_op.f('ix_returns_campaign_id_buyer_id'))
        batch_op.drop_index(batch_op.f('ix_returns_buyer_id_requested_at'))

    op.drop_table('returns')
