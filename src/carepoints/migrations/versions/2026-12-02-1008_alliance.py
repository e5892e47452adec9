"""alliance

Revision ID: d4e5f6070808
Revises: d4e5f6070807
Create Date: 2026-12-02 10:08:00
"""
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070808'
down_revision: str | None = 'd4e5f6070807'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _add_reference(tbl: str, column: str, target: str) -> None:
    """A nullable column referencing `target`.id. SQLite adds it in place (ALTER TABLE ... REFERENCES):
    recreating institutions or staff_users would break their referencing rows' foreign keys."""
    if _sqlite():
        op.execute(f"ALTER TABLE {tbl} ADD COLUMN {column} VARCHAR(36) REFERENCES {target} (id)")
        return
    with op.batch_alter_table(tbl, schema=None) as batch_op:
        batch_op.add_column(sa.Column(column, sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(batch_op.f(f'fk_{tbl}_{column}_{target}'), target, [column], ['id'])


def _drop_reference(tbl: str, column: str, target: str) -> None:
    with op.batch_alter_table(tbl, schema=None) as batch_op:
        if _sqlite():  # recreated without the column (and its unnamed reference)
            batch_op.drop_column(column)
            return
        batch_op.drop_constraint(batch_op.f(f'fk_{tbl}_{column}_{target}'), type_='foreignkey')
        batch_op.drop_column(column)


def upgrade() -> None:
    op.create_table('alliances',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alliances')),
    sa.UniqueConstraint('code', name=op.f('uq_alliances_code'))
    )
    _add_reference('institutions', 'alliance_id', 'alliances')
    op.create_index(op.f('ix_institutions_alliance_id'), 'institutions', ['alliance_id'], unique=False)
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM institutions LIMIT 1")).first() is not None:
        # the institutions so far form one (default) alliance
        aid = str(uuid.uuid4())
        conn.execute(sa.text("INSERT INTO alliances (id, code, name_zh, name_en, created_at) "
                             "VALUES (:id, 'default', '医联体', 'Alliance', :at)"),
                     {"id": aid, "at": datetime.now(UTC)})
        conn.execute(sa.text("UPDATE institutions SET alliance_id = :id"), {"id": aid})
    op.create_table('institution_systems',
    sa.Column('system', sa.String(length=200), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'],
                            name=op.f('fk_institution_systems_institution_id_institutions')),
    sa.PrimaryKeyConstraint('system', name=op.f('pk_institution_systems'))
    )
    with op.batch_alter_table('institution_systems', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_institution_systems_institution_id'), ['institution_id'], unique=False)
    op.create_table('patient_institutions',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'],
                            name=op.f('fk_patient_institutions_institution_id_institutions')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_institutions_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', 'institution_id', name=op.f('pk_patient_institutions'))
    )
    op.create_table('api_key_institutions',
    sa.Column('key_id', sa.String(length=36), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'],
                            name=op.f('fk_api_key_institutions_institution_id_institutions')),
    sa.ForeignKeyConstraint(['key_id'], ['api_keys.id'], name=op.f('fk_api_key_institutions_key_id_api_keys')),
    sa.PrimaryKeyConstraint('key_id', 'institution_id', name=op.f('pk_api_key_institutions'))
    )
    _add_reference('staff_users', 'institution_id', 'institutions')
    op.add_column('staff_users', sa.Column('alliance_wide', sa.Boolean(), server_default=sa.text('false'),
                                           nullable=False))
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_codes', sa.JSON(), nullable=True))
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_institution', sa.String(length=32), nullable=True))
    op.create_table('institution_budget_years',
    sa.Column('institution_code', sa.String(length=32), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('used_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('used_fen >= 0', name=op.f('ck_institution_budget_years_used_nonneg')),
    sa.PrimaryKeyConstraint('institution_code', 'year', name=op.f('pk_institution_budget_years'))
    )


def downgrade() -> None:
    op.drop_table('institution_budget_years')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_column('budget_institution')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_column('institution_codes')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_column('alliance_wide')
    _drop_reference('staff_users', 'institution_id', 'institutions')
    op.drop_table('api_key_institutions')
    op.drop_table('patient_institutions')
    with op.batch_alter_table('institution_systems', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_institution_systems_institution_id'))
    op.drop_table('institution_systems')
    op.drop_index(op.f('ix_institutions_alliance_id'), table_name='institutions')
    _drop_reference('institutions', 'alliance_id', 'alliances')
    op.drop_table('alliances')
