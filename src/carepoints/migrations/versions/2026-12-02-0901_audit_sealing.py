"""audit log sealed in blocks, request reads

The audit log gains the actor's role and room for request-level actions
(`http:<METHOD>:<route template>`); `audit_seals` holds the sealed blocks and
`audit_purge_gate` the SQLite purge gate. Triggers make both tables
append-only: UPDATE is always refused, DELETE only inside the retention purge
(PostgreSQL: the transaction-local setting `carepoints.audit_purge = on`;
SQLite: a row in `audit_purge_gate`, written and removed inside the purge's
transaction). TRUNCATE (the PostgreSQL test fixture) is not a row operation
and is not blocked.

Revision ID: c3d4e5f60702
Revises: c3d4e5f60701
Create Date: 2026-12-02 09:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3d4e5f60702'
down_revision: str | None = 'c3d4e5f60701'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('audit_log', 'audit_seals')

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND coalesce(current_setting('carepoints.audit_purge', true), '') = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _create_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PG_FUNCTION)
        for t in TABLES:
            op.execute(f'CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} '
                       f'FOR EACH ROW EXECUTE FUNCTION audit_append_only()')
        return
    for t in TABLES:
        op.execute(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE ON {t} "
                   f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")
        op.execute(f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "  # noqa: S608 - fixed table names
                   f"WHEN NOT EXISTS (SELECT 1 FROM audit_purge_gate) "
                   f"BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END")


def _drop_triggers() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for t in TABLES:
            op.execute(f'DROP TRIGGER IF EXISTS {t}_append_only ON {t}')
        op.execute('DROP FUNCTION IF EXISTS audit_append_only()')
        return
    for t in TABLES:
        op.execute(f'DROP TRIGGER IF EXISTS {t}_no_update')
        op.execute(f'DROP TRIGGER IF EXISTS {t}_no_delete')


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_role', sa.String(length=32), nullable=True))
        batch_op.alter_column('action', existing_type=sa.String(length=64), type_=sa.String(length=160),
                              existing_nullable=False)
    op.create_table('audit_seals',
    sa.Column('block', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('first_id', sa.String(length=36), nullable=False),
    sa.Column('last_id', sa.String(length=36), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('prev_digest', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('row_digests', sa.JSON(), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('block', name=op.f('pk_audit_seals'))
    )
    op.create_table('audit_purge_gate',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_purge_gate'))
    )
    _create_triggers()


def downgrade() -> None:
    _drop_triggers()
    op.drop_table('audit_purge_gate')
    op.drop_table('audit_seals')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('action', existing_type=sa.String(length=160), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.drop_column('actor_role')
