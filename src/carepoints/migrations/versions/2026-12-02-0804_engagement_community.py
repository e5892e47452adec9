"""engagement: community posts, photo tasks and photos, invites

Revision ID: b2c3d4e5f605
Revises: b2c3d4e5f604
Create Date: 2026-12-02 08:04:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b2c3d4e5f605'
down_revision: str | None = 'b2c3d4e5f604'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('photo_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('description', sa.JSON(), nullable=True),
    sa.Column('per_day', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=8), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photo_tasks')),
    sa.UniqueConstraint('code', name=op.f('uq_photo_tasks_code'))
    )
    op.create_table('community_posts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('topic', sa.String(length=50), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=32), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('decided_by', sa.String(length=36), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['community_posts.id'], name=op.f('fk_community_posts_parent_id_community_posts')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_community_posts_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_community_posts'))
    )
    with op.batch_alter_table('community_posts', schema=None) as batch_op:
        batch_op.create_index('ix_community_posts_feed', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_community_posts_parent', ['parent_id', 'status'], unique=False)
        batch_op.create_index('ix_community_posts_patient', ['patient_id', 'created_at'], unique=False)
    op.create_table('invite_codes',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_invite_codes_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_invite_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_invite_codes_code'))
    )
    op.create_table('invites',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('invitee_id', sa.String(length=36), nullable=False),
    sa.Column('inviter_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('visit_event_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['invitee_id'], ['patients.id'], name=op.f('fk_invites_invitee_id_patients')),
    sa.ForeignKeyConstraint(['inviter_id'], ['patients.id'], name=op.f('fk_invites_inviter_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invites')),
    sa.UniqueConstraint('invitee_id', name=op.f('uq_invites_invitee_id'))
    )
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.create_index('ix_invites_inviter', ['inviter_id', 'accepted_at'], unique=False)
    op.create_table('photos',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('done_by_patient_id', sa.String(length=36), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['done_by_patient_id'], ['patients.id'], name=op.f('fk_photos_done_by_patient_id_patients')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_photos_patient_id_patients')),
    sa.ForeignKeyConstraint(['task_id'], ['photo_tasks.id'], name=op.f('fk_photos_task_id_photo_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_photos')),
    sa.UniqueConstraint('task_id', 'patient_id', 'day', 'seq', name=op.f('uq_photos_task_id_patient_id_day_seq'))
    )


def downgrade() -> None:
    op.drop_table('photos')
    with op.batch_alter_table('invites', schema=None) as batch_op:
        batch_op.drop_index('ix_invites_inviter')
    op.drop_table('invites')
    op.drop_table('invite_codes')
    with op.batch_alter_table('community_posts', schema=None) as batch_op:
        batch_op.drop_index('ix_community_posts_patient')
        batch_op.drop_index('ix_community_posts_parent')
        batch_op.drop_index('ix_community_posts_feed')
    op.drop_table('community_posts')
    op.drop_table('photo_tasks')
