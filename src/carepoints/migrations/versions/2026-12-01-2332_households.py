"""households, household wallets and proxy authorisations

Revision ID: a1b2c3d4e503
Revises: a1b2c3d4e502
Create Date: 2026-12-01 23:32:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a1b2c3d4e503'
down_revision: str | None = 'a1b2c3d4e502'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('households',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('head_patient_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['head_patient_id'], ['patients.id'], name=op.f('fk_households_head_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_households'))
    )
    op.create_table('proxy_authorisations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('proxy_kind', sa.String(length=16), nullable=False),
    sa.Column('proxy_patient_id', sa.String(length=36), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(proxy_kind = 'service_window' AND proxy_patient_id IS NULL) OR (proxy_kind IN ('patient', 'guardian') AND proxy_patient_id IS NOT NULL AND proxy_patient_id <> patient_id)", name=op.f('ck_proxy_authorisations_proxy')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_proxy_authorisations_patient_id_patients')),
    sa.ForeignKeyConstraint(['proxy_patient_id'], ['patients.id'], name=op.f('fk_proxy_authorisations_proxy_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proxy_authorisations'))
    )
    with op.batch_alter_table('proxy_authorisations', schema=None) as batch_op:
        batch_op.create_index('ix_proxy_authorisations_patient', ['patient_id', 'created_at'], unique=False)
        batch_op.create_index('uq_proxy_authorisations_active', ['patient_id', 'proxy_patient_id'], unique=True, sqlite_where=sa.text('revoked_at IS NULL AND proxy_patient_id IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NULL AND proxy_patient_id IS NOT NULL'))
        batch_op.create_index('uq_proxy_authorisations_window', ['patient_id'], unique=True, sqlite_where=sa.text("revoked_at IS NULL AND proxy_kind = 'service_window'"), postgresql_where=sa.text("revoked_at IS NULL AND proxy_kind = 'service_window'"))

    op.create_table('household_members',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('household_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('can_redeem', sa.Boolean(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('head', 'member')", name=op.f('ck_household_members_role')),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_household_members_household_id_households')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_household_members_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_members'))
    )
    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.create_index('ix_household_members_household', ['household_id', 'left_at'], unique=False)
        batch_op.create_index('uq_household_members_active', ['patient_id'], unique=True, sqlite_where=sa.text('left_at IS NULL'), postgresql_where=sa.text('left_at IS NULL'))
        batch_op.create_index('uq_household_members_head', ['household_id'], unique=True, sqlite_where=sa.text("left_at IS NULL AND role = 'head'"), postgresql_where=sa.text("left_at IS NULL AND role = 'head'"))

    # Added columns and indexes only: SQLite adds them in place, without rebuilding the ledger tables.
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('household_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('pool_id', sa.String(length=36), nullable=True))
        batch_op.create_index('uq_accounts_household', ['household_id'], unique=True, sqlite_where=sa.text('household_id IS NOT NULL'), postgresql_where=sa.text('household_id IS NOT NULL'))
        batch_op.create_index('ix_accounts_pool', ['pool_id'], unique=False, sqlite_where=sa.text('pool_id IS NOT NULL'), postgresql_where=sa.text('pool_id IS NOT NULL'))

    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('moved_from', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_lots_moved_from', ['moved_from'], unique=False, sqlite_where=sa.text('moved_from IS NOT NULL'), postgresql_where=sa.text('moved_from IS NOT NULL'))

    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('member_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_transfers_member', ['member_id', 'at'], unique=False, sqlite_where=sa.text('member_id IS NOT NULL'), postgresql_where=sa.text('member_id IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_transfers_member', sqlite_where=sa.text('member_id IS NOT NULL'), postgresql_where=sa.text('member_id IS NOT NULL'))
        batch_op.drop_column('member_id')

    with op.batch_alter_table('lots', schema=None) as batch_op:
        batch_op.drop_index('ix_lots_moved_from', sqlite_where=sa.text('moved_from IS NOT NULL'), postgresql_where=sa.text('moved_from IS NOT NULL'))
        batch_op.drop_column('moved_from')
        batch_op.drop_column('member_id')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_accounts_pool', sqlite_where=sa.text('pool_id IS NOT NULL'), postgresql_where=sa.text('pool_id IS NOT NULL'))
        batch_op.drop_index('uq_accounts_household', sqlite_where=sa.text('household_id IS NOT NULL'), postgresql_where=sa.text('household_id IS NOT NULL'))
        batch_op.drop_column('pool_id')
        batch_op.drop_column('household_id')

    with op.batch_alter_table('household_members', schema=None) as batch_op:
        batch_op.drop_index('uq_household_members_head', sqlite_where=sa.text("left_at IS NULL AND role = 'head'"), postgresql_where=sa.text("left_at IS NULL AND role = 'head'"))
        batch_op.drop_index('uq_household_members_active', sqlite_where=sa.text('left_at IS NULL'), postgresql_where=sa.text('left_at IS NULL'))
        batch_op.drop_index('ix_household_members_household')

    op.drop_table('household_members')
    with op.batch_alter_table('proxy_authorisations', schema=None) as batch_op:
        batch_op.drop_index('uq_proxy_authorisations_window', sqlite_where=sa.text("revoked_at IS NULL AND proxy_kind = 'service_window'"), postgresql_where=sa.text("revoked_at IS NULL AND proxy_kind = 'service_window'"))
        batch_op.drop_index('uq_proxy_authorisations_active', sqlite_where=sa.text('revoked_at IS NULL AND proxy_patient_id IS NOT NULL'), postgresql_where=sa.text('revoked_at IS NULL AND proxy_patient_id IS NOT NULL'))
        batch_op.drop_index('ix_proxy_authorisations_patient')

    op.drop_table('proxy_authorisations')
    op.drop_table('households')
