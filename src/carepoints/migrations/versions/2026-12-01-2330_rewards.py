"""rewards: catalogue, redemptions, coupons, fee offsets; audit log

Revision ID: a1b2c3d4e501
Revises: 373656790a1d
Create Date: 2026-12-01 23:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a1b2c3d4e501'
down_revision: str | None = '373656790a1d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=True),
    sa.Column('patient_id', sa.String(length=36), nullable=True),
    sa.Column('on_behalf_of', sa.String(length=36), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_actor', ['actor_kind', 'actor_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_patient', ['patient_id', 'at'], unique=False)

    op.create_table('budget_years',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('used_fen', sa.BigInteger(), nullable=False),
    sa.Column('alerted', sa.Integer(), nullable=False),
    sa.CheckConstraint('used_fen >= 0', name=op.f('ck_budget_years_used_nonneg')),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_budget_years'))
    )
    op.create_table('reward_usage',
    sa.Column('reward_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.CheckConstraint('used >= 0', name=op.f('ck_reward_usage_used_nonneg')),
    sa.PrimaryKeyConstraint('reward_id', 'patient_id', 'period_key', name=op.f('pk_reward_usage'))
    )
    op.create_table('rewards',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('tier_points', sa.JSON(), nullable=False),
    sa.Column('stock_total', sa.Integer(), nullable=True),
    sa.Column('stock_used', sa.Integer(), nullable=False),
    sa.Column('limit_count', sa.Integer(), nullable=True),
    sa.Column('limit_period', sa.String(length=8), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('cost_fen', sa.Integer(), nullable=False),
    sa.Column('code_valid_days', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cost_fen >= 0', name=op.f('ck_rewards_cost_nonneg')),
    sa.CheckConstraint('points > 0', name=op.f('ck_rewards_points_positive')),
    sa.CheckConstraint('stock_used >= 0 AND (stock_total IS NULL OR stock_used <= stock_total)', name=op.f('ck_rewards_stock_covered')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards')),
    sa.UniqueConstraint('code', name=op.f('uq_rewards_code'))
    )
    op.create_table('fee_offsets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('wallet_id', sa.String(length=36), nullable=False),
    sa.Column('hold_id', sa.String(length=36), nullable=True),
    sa.Column('institution_id', sa.String(length=36), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=True),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('fee_fen', sa.Integer(), nullable=False),
    sa.Column('tier_discount_fen', sa.Integer(), nullable=False),
    sa.Column('offset_fen', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refund_transfer_id', sa.String(length=36), nullable=True),
    sa.CheckConstraint('points >= 0 AND offset_fen >= 0 AND tier_discount_fen >= 0 AND fee_fen >= 0', name=op.f('ck_fee_offsets_amounts_nonneg')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_fee_offsets_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_offsets')),
    sa.UniqueConstraint('hold_id', name=op.f('uq_fee_offsets_hold_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_fee_offsets_idempotency_key'))
    )
    with op.batch_alter_table('fee_offsets', schema=None) as batch_op:
        batch_op.create_index('ix_fee_offsets_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_fee_offsets_patient_id'), ['patient_id'], unique=False)

    op.create_table('redemptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('wallet_id', sa.String(length=36), nullable=False),
    sa.Column('reward_id', sa.String(length=36), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('cost_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=True),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('refund_transfer_id', sa.String(length=36), nullable=True),
    sa.Column('refunded_points', sa.Integer(), nullable=True),
    sa.Column('institution_id', sa.String(length=36), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('proxy_patient_id', sa.String(length=36), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refunded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('points > 0', name=op.f('ck_redemptions_points_positive')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_redemptions_quantity_positive')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_redemptions_patient_id_patients')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_redemptions_reward_id_rewards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_redemptions_idempotency_key'))
    )
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index('ix_redemptions_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemptions_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_redemptions_reward_id'), ['reward_id'], unique=False)

    op.create_table('coupons',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('redemption_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('reward_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'], name=op.f('fk_coupons_redemption_id_redemptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupons')),
    sa.UniqueConstraint('code', name=op.f('uq_coupons_code'))
    )
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupons_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_coupons_redemption_id'), ['redemption_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coupons', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupons_redemption_id'))
        batch_op.drop_index(batch_op.f('ix_coupons_patient_id'))

    op.drop_table('coupons')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redemptions_reward_id'))
        batch_op.drop_index(batch_op.f('ix_redemptions_patient_id'))
        batch_op.drop_index('ix_redemptions_created')

    op.drop_table('redemptions')
    with op.batch_alter_table('fee_offsets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fee_offsets_patient_id'))
        batch_op.drop_index('ix_fee_offsets_created')

    op.drop_table('fee_offsets')
    op.drop_table('rewards')
    op.drop_table('reward_usage')
    op.drop_table('budget_years')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_patient')
        batch_op.drop_index('ix_audit_log_actor')

    op.drop_table('audit_log')
