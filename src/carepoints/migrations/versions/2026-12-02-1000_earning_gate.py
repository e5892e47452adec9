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
    with op.batch_alter_table('patients') as batch:
        batch.add_column(sa.Column('earning_frozen_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('merged_into', sa.String(length=36), nullable=True))
        batch.create_foreign_key(batch.f('fk_patients_merged_into_patients'), 'patients', ['merged_into'], ['id'])
    # the clearing account of wallet-to-wallet moves (ledger.accounts.System.transfers)
    op.execute("INSERT INTO accounts (id, kind, code, balance, debt, held, chain_seq, chain_head, created_at) "
               "SELECT '00000000-0000-7000-8000-000000000007', 'system', 'transfers', 0, 0, 0, 0, '', "
               "CURRENT_TIMESTAMP WHERE NOT EXISTS (SELECT 1 FROM accounts "
               "WHERE id = '00000000-0000-7000-8000-000000000007')")


def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE id = '00000000-0000-7000-8000-000000000007'")
    with op.batch_alter_table('patients') as batch:
        batch.drop_constraint(batch.f('fk_patients_merged_into_patients'), type_='foreignkey')
        batch.drop_column('merged_into')
        batch.drop_column('earning_frozen_at')
