"""request nonces and per-key rate limits

Revision ID: c3d4e5f60705
Revises: c3d4e5f60704
Create Date: 2026-12-02 09:04:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3d4e5f60705'
down_revision: str | None = 'c3d4e5f60704'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signing_secret', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('rate_limit_per_minute', sa.Integer(), nullable=True))
    op.create_table('request_nonces',
    sa.Column('key_id', sa.String(length=36), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key_id', 'nonce', name=op.f('pk_request_nonces'))
    )
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.create_index('ix_request_nonces_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_nonces', schema=None) as batch_op:
        batch_op.drop_index('ix_request_nonces_at')
    op.drop_table('request_nonces')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rate_limit_per_minute')
        batch_op.drop_column('signing_secret')
