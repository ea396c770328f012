"""ledger: accounts, journal entries, postings, balances, periods

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:12:14.626211
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import exchange.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('journal_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('lead_id', sa.Uuid(), nullable=True),
    sa.Column('sale_id', sa.Uuid(), nullable=True),
    sa.Column('reverses_id', sa.Uuid(), nullable=True),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['parties.id'], name=op.f('fk_journal_entries_created_by_parties')),
    sa.ForeignKeyConstraint(['reverses_id'], ['journal_entries.id'], name=op.f('fk_journal_entries_reverses_id_journal_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_journal_entries_reverses_id'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entries_lead_id'), ['lead_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_period_created_at'), ['period', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entries_sale_id'), ['sale_id'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('code', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('party_id', sa.Uuid(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_at', exchange.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['party_id'], ['parties.id'], name=op.f('fk_ledger_accounts_party_id_parties')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_ledger_accounts'))
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_party_id'), ['party_id'], unique=False)

    op.create_table('ledger_periods',
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('closed_at', exchange.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['closed_by'], ['parties.id'], name=op.f('fk_ledger_periods_closed_by_parties')),
    sa.PrimaryKeyConstraint('period', name=op.f('pk_ledger_periods'))
    )
    op.create_table('account_balances',
    sa.Column('account_code', sa.String(length=80), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_code'], ['ledger_accounts.code'], name=op.f('fk_account_balances_account_code_ledger_accounts')),
    sa.PrimaryKeyConstraint('account_code', name=op.f('pk_account_balances'))
    )
    op.create_table('postings',
    sa.Column('entry_id', sa.Uuid(), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('account_code', sa.String(length=80), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['account_code'], ['ledger_accounts.code'], name=op.f('fk_postings_account_code_ledger_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_postings_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('entry_id', 'line', name=op.f('pk_postings'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_postings_account_code_entry_id'), ['account_code', 'entry_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_account_code_entry_id'))

    op.drop_table('postings')
    op.drop_table('account_balances')
    op.drop_table('ledger_periods')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_party_id'))

    op.drop_table('ledger_accounts')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entries_sale_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_period_created_at'))
        batch_op.drop_index(batch_op.f('ix_journal_entries_lead_id'))

    op.drop_table('journal_entries')
