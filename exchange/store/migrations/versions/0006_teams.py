"""teams: agent profiles, team configs and routes, offers, lead owners

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 21:09:08.250875
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import exchange.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_profiles',
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('working_hours', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('skills', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('weight', sa.Integer(), nullable=False),
    sa.Column('daily_cap', sa.Integer(), nullable=True),
    sa.Column('concurrent_cap', sa.Integer(), nullable=True),
    sa.Column('manual_status', sa.String(length=16), nullable=False),
    sa.Column('last_heartbeat_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_ttl_s', sa.Integer(), nullable=True),
    sa.Column('served_today', sa.Integer(), nullable=False),
    sa.Column('served_on', sa.Date(), nullable=True),
    sa.Column('open_leads', sa.Integer(), nullable=False),
    sa.Column('served_in_window', sa.Integer(), nullable=False),
    sa.Column('last_assigned_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['parties.id'], name=op.f('fk_agent_profiles_agent_id_parties')),
    sa.PrimaryKeyConstraint('agent_id', name=op.f('pk_agent_profiles'))
    )
    op.create_table('team_configs',
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('strategy', sa.String(length=16), nullable=False),
    sa.Column('offer_timeout_s', sa.Integer(), nullable=False),
    sa.Column('max_rounds', sa.Integer(), nullable=False),
    sa.Column('parallel_k', sa.Integer(), nullable=True),
    sa.Column('fallback', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('skill_fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('queue_max_age_s', sa.Integer(), nullable=False),
    sa.Column('sla_minutes', sa.Integer(), nullable=True),
    sa.Column('max_reassigns', sa.Integer(), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['parties.id'], name=op.f('fk_team_configs_team_id_parties')),
    sa.PrimaryKeyConstraint('team_id', name=op.f('pk_team_configs'))
    )
    op.create_table('team_routes',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('vertical_id', sa.Uuid(), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=True),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['parties.id'], name=op.f('fk_team_routes_team_id_parties')),
    sa.ForeignKeyConstraint(['vertical_id'], ['verticals.id'], name=op.f('fk_team_routes_vertical_id_verticals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_routes')),
    sa.UniqueConstraint('vertical_id', 'source', name=op.f('uq_team_routes_vertical_id_source'))
    )
    op.create_table('lead_owners',
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('candidates', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('past_owners', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('queued_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('owned_since', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_contact_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reassign_count', sa.Integer(), nullable=False),
    sa.Column('updated_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['parties.id'], name=op.f('fk_lead_owners_agent_id_parties')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_lead_owners_lead_id_leads')),
    sa.ForeignKeyConstraint(['team_id'], ['parties.id'], name=op.f('fk_lead_owners_team_id_parties')),
    sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_lead_owners'))
    )
    with op.batch_alter_table('lead_owners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_owners_agent_id_status'), ['agent_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_owners_team_id_status_queued_at'), ['team_id', 'status', 'queued_at'], unique=False)

    op.create_table('offers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['parties.id'], name=op.f('fk_offers_agent_id_parties')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_offers_lead_id_leads')),
    sa.ForeignKeyConstraint(['team_id'], ['parties.id'], name=op.f('fk_offers_team_id_parties')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers'))
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offers_agent_id_status'), ['agent_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_status_expires_at'), ['status', 'expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offers_status_expires_at'))
        batch_op.drop_index(batch_op.f('ix_offers_lead_id'))
        batch_op.drop_index(batch_op.f('ix_offers_agent_id_status'))

    op.drop_table('offers')
    with op.batch_alter_table('lead_owners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_owners_team_id_status_queued_at'))
        batch_op.drop_index(batch_op.f('ix_lead_owners_agent_id_status'))

    op.drop_table('lead_owners')
    op.drop_table('team_routes')
    op.drop_table('team_configs')
    op.drop_table('agent_profiles')
