"""wechat

Revision ID: d4e5f6070807
Revises: d4e5f6070806
Create Date: 2026-12-02 10:07:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070807'
down_revision: str | None = 'd4e5f6070806'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wechat_bindings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('openid_hash', sa.String(length=64), nullable=False),
    sa.Column('bound_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_wechat_bindings_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_bindings')),
    sa.UniqueConstraint('patient_id', 'app_id', name=op.f('uq_wechat_bindings_patient_id_app_id'))
    )
    with op.batch_alter_table('wechat_bindings', schema=None) as batch_op:
        batch_op.create_index('ix_wechat_bindings_openid', ['app_id', 'openid_hash'], unique=False)
    op.create_table('wechat_states',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=8), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=True),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('openid_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_wechat_states_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_states')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_wechat_states_state_hash'))
    )
    with op.batch_alter_table('wechat_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_states_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wechat_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_states_created_at'))
    op.drop_table('wechat_states')
    with op.batch_alter_table('wechat_bindings', schema=None) as batch_op:
        batch_op.drop_index('ix_wechat_bindings_openid')
    op.drop_table('wechat_bindings')
