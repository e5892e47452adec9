"""consent sources, erasure, retention

Revision ID: c3d4e5f60703
Revises: c3d4e5f60702
Create Date: 2026-12-02 09:02:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3d4e5f60703'
down_revision: str | None = 'c3d4e5f60702'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    # At most one active grant per (patient, purpose): older active duplicates end as superseded.
    rows = conn.execute(sa.text(
        "SELECT id, patient_id, purpose, accepted_at FROM consents WHERE withdrawn_at IS NULL "
        "ORDER BY patient_id, purpose, accepted_at DESC, id DESC")).all()
    seen: set[tuple[str, str]] = set()
    stale: list[tuple[str, object]] = []
    for cid, pid, purpose, accepted in rows:
        if (pid, purpose) in seen:
            stale.append((cid, accepted))
        seen.add((pid, purpose))
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('guardian_relation', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('guardian_patient_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('guardian_name_enc', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('ended_by', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_consents_guardian_patient_id_patients'), 'patients',
                                    ['guardian_patient_id'], ['id'])
        batch_op.create_check_constraint(batch_op.f('ck_consents_source'),
                                         "source IN ('patient', 'guardian', 'institution')")
    for cid, accepted in stale:
        conn.execute(sa.text("UPDATE consents SET withdrawn_at = :at, ended_by = 'superseded' WHERE id = :id"),
                     {"at": accepted, "id": cid})
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('uq_consents_active', ['patient_id', 'purpose'], unique=True,
                              sqlite_where=sa.text('withdrawn_at IS NULL'),
                              postgresql_where=sa.text('withdrawn_at IS NULL'))
    op.create_table('patient_erasures',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_erasures_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient_erasures'))
    )


def downgrade() -> None:
    op.drop_table('patient_erasures')
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('uq_consents_active', sqlite_where=sa.text('withdrawn_at IS NULL'),
                            postgresql_where=sa.text('withdrawn_at IS NULL'))
        batch_op.drop_constraint(batch_op.f('ck_consents_source'), type_='check')
        batch_op.drop_constraint(batch_op.f('fk_consents_guardian_patient_id_patients'), type_='foreignkey')
        batch_op.drop_column('ended_by')
        batch_op.drop_column('guardian_name_enc')
        batch_op.drop_column('guardian_patient_id')
        batch_op.drop_column('guardian_relation')
