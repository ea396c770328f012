"""foundation: parties, keys, verticals, leads

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 19:33:07.394765
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('parties',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['parties.id'], name=op.f('fk_parties_parent_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parties'))
    )
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_parties_kind_created_at'), ['kind', 'created_at'], unique=False)

    op.create_table('verticals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('dedupe_window_days', sa.Integer(), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_verticals')),
    sa.UniqueConstraint('slug', name=op.f('uq_verticals_slug'))
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('party_id', sa.Uuid(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_api_keys_party_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_party_id'), ['party_id'], unique=False)

    op.create_table('dedupe_keys',
    sa.Column('vertical_id', sa.Uuid(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('accepted_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['vertical_id'], ['verticals.id'], name=op.f('fk_dedupe_keys_vertical_id_verticals')),
    sa.PrimaryKeyConstraint('vertical_id', 'key_hash', name=op.f('pk_dedupe_keys'))
    )
    op.create_table('idempotency_keys',
    sa.Column('party_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_idempotency_keys_party_id_parties')),
    sa.PrimaryKeyConstraint('party_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    op.create_table('leads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('vertical_id', sa.Uuid(), nullable=False),
    sa.Column('vertical_version', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('test', sa.Boolean(), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=True),
    sa.Column('sub_ids', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('consent', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['parties.id'], name=op.f('fk_leads_supplier_id_parties')),
    sa.ForeignKeyConstraint(['vertical_id'], ['verticals.id'], name=op.f('fk_leads_vertical_id_verticals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leads_status_created_at'), ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_supplier_id_created_at'), ['supplier_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_leads_vertical_id_created_at'), ['vertical_id', 'created_at'], unique=False)

    op.create_table('lead_pii',
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('pii', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_pii_lead_id_leads')),
    sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_lead_pii'))
    )



def downgrade() -> None:

    op.drop_table('lead_pii')
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leads_vertical_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_leads_supplier_id_created_at'))
        batch_op.drop_index(batch_op.f('ix_leads_status_created_at'))

    op.drop_table('leads')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
    op.drop_table('dedupe_keys')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_party_id'))

    op.drop_table('api_keys')
    op.drop_table('verticals')
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_parties_kind_created_at'))

    op.drop_table('parties')

