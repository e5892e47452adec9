"""earning gate: frozen earning, merged records, the transfers clearing account

Revision ID: d4e5f6070800
Revises: c3d4e5f60706
Create Date: 2026-12-02 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070800'
down_revision: str | None = 'c3d4e5f60706'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('patients', sa.Column('earning_frozen_at', sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        # in place: rebuilding `patients` (batch mode) fails once other tables reference its rows;
        # a downgrade leaves the column behind (see there), so it may exist already
        if 'merged_into' not in {c['name'] for c in sa.inspect(op.get_bind()).get_columns('patients')}:
            op.execute("ALTER TABLE patients ADD COLUMN merged_into VARCHAR(36) REFERENCES patients (id)")
    else:
        op.add_column('patients', sa.Column('merged_into', sa.String(length=36), nullable=True))
        op.create_foreign_key(op.f('fk_patients_merged_into_patients'), 'patients', 'patients',
                              ['merged_into'], ['id'])
    # the clearing account of wallet-to-wallet moves (ledger.accounts.System.transfers)
    op.execute("INSERT INTO accounts (id, kind, code, balance, debt, held, chain_seq, chain_head, created_at) "
               "SELECT '00000000-0000-7000-8000-000000000007', 'system', 'transfers', 0, 0, 0, 0, '', "
               "CURRENT_TIMESTAMP WHERE NOT EXISTS (SELECT 1 FROM accounts "
               "WHERE id = '00000000-0000-7000-8000-000000000007')")


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE id = '00000000-0000-7000-8000-000000000007'")
    op.drop_column('patients', 'earning_frozen_at')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite cannot drop a column that references a table in place, and rebuilding `patients`
        # fails once other rows reference it: the (NULL, unused) column stays; upgrade reuses it
        return
    op.drop_constraint(op.f('fk_patients_merged_into_patients'), 'patients', type_='foreignkey')
    op.drop_column('patients', 'merged_into')
