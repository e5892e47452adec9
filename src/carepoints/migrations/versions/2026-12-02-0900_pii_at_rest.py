"""PII encrypted at rest with key ids and blind indexes

Adds the encrypted PII columns, blind indexes and per-patient key material
(`patient_keys`), encrypts every existing row in batches with the configured
`CAREPOINTS_PII_KEY` (the same settings the application runs with), then drops the
plaintext columns. On SQLite the columns are dropped with SQLite's own
ALTER TABLE DROP COLUMN (3.35+): a batch copy of `patients` would trip the foreign
keys that reference it.

Revision ID: c3d4e5f60701
Revises: b2c3d4e5f605
Create Date: 2026-12-02 09:00:00
"""
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = 'c3d4e5f60701'
down_revision: str | None = 'b2c3d4e5f605'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

_patients = sa.table(
    'patients', sa.column('id', sa.String), sa.column('name', sa.String), sa.column('phone', sa.String),
    sa.column('id_number', sa.String), sa.column('name_enc', sa.Text), sa.column('phone_enc', sa.Text),
    sa.column('id_number_enc', sa.Text), sa.column('address_enc', sa.Text),
    sa.column('phone_index', sa.String), sa.column('id_number_index', sa.String),
    sa.column('pii_kid', sa.String), sa.column('status', sa.String))
_keys = sa.table('patient_keys', sa.column('patient_id', sa.String), sa.column('salt', sa.LargeBinary),
                 sa.column('created_at', sa.DateTime(timezone=True)))


def _keyring() -> Any:
    from carepoints.config import get_settings
    from carepoints.patients import crypto

    return crypto.keyring(get_settings())


def upgrade() -> None:
    op.create_table('patient_keys',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('salt', sa.LargeBinary(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_keys_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient_keys'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phone_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('id_number_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('phone_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('id_number_index', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pii_kid', sa.String(length=24), nullable=True))
        batch_op.create_index(batch_op.f('ix_patients_phone_index'), ['phone_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_id_number_index'), ['id_number_index'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_pii_kid'), ['pii_kid'], unique=False)
        batch_op.drop_index('ix_patients_phone')
    _encrypt_rows()
    if op.get_bind().dialect.name == 'sqlite':
        for column in ('name', 'phone', 'id_number'):
            op.execute(f'ALTER TABLE patients DROP COLUMN {column}')
    else:
        with op.batch_alter_table('patients', schema=None) as batch_op:
            batch_op.drop_column('name')
            batch_op.drop_column('phone')
            batch_op.drop_column('id_number')


def _encrypt_rows() -> None:
    from carepoints.patients import crypto
    from carepoints.patients.sealing import sealed

    conn = op.get_bind()
    if conn.execute(sa.select(sa.func.count()).select_from(_patients)).scalar() == 0:
        return  # a fresh database needs no key
    ring = _keyring()
    now = datetime.now(UTC)
    last = ''
    while True:
        rows = conn.execute(sa.select(_patients.c.id, _patients.c.name, _patients.c.phone, _patients.c.id_number)
                            .where(_patients.c.id > last).order_by(_patients.c.id).limit(BATCH)).all()
        if not rows:
            return
        salts = {r.id: crypto.new_salt() for r in rows}
        conn.execute(sa.insert(_keys), [{'patient_id': pid, 'salt': salt, 'created_at': now}
                                        for pid, salt in salts.items()])
        for r in rows:
            values = sealed(ring, r.id, salts[r.id], name=r.name, phone=r.phone, id_number=r.id_number,
                            address=None)
            conn.execute(sa.update(_patients).where(_patients.c.id == r.id).values(**values))
        last = rows[-1].id


def downgrade() -> None:
    from carepoints.patients.sealing import opened

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('id_number', sa.String(length=32), nullable=True))
    conn = op.get_bind()
    if conn.execute(sa.select(sa.func.count()).select_from(_patients)).scalar():
        ring = _keyring()
        last = ''
        while True:
            rows = conn.execute(
                sa.select(_patients.c.id, _patients.c.name_enc, _patients.c.phone_enc, _patients.c.id_number_enc,
                          _patients.c.address_enc, _keys.c.salt)
                .select_from(_patients.outerjoin(_keys, _keys.c.patient_id == _patients.c.id))
                .where(_patients.c.id > last).order_by(_patients.c.id).limit(BATCH)).mappings().all()
            if not rows:
                break
            for r in rows:
                pii = opened(ring, r)
                conn.execute(sa.update(_patients).where(_patients.c.id == r['id']).values(
                    name=pii.name, phone=pii.phone or '', id_number=pii.id_number))
            last = rows[-1]['id']
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_pii_kid'))
        batch_op.drop_index(batch_op.f('ix_patients_id_number_index'))
        batch_op.drop_index(batch_op.f('ix_patients_phone_index'))
        batch_op.create_index('ix_patients_phone', ['phone'], unique=False)
    if conn.dialect.name == 'sqlite':
        # SQLite cannot make the restored columns NOT NULL without copying the table (see above).
        for column in ('pii_kid', 'id_number_index', 'phone_index', 'address_enc', 'id_number_enc', 'phone_enc',
                       'name_enc'):
            op.execute(f'ALTER TABLE patients DROP COLUMN {column}')
    else:
        with op.batch_alter_table('patients', schema=None) as batch_op:
            batch_op.alter_column('name', existing_type=sa.String(length=100), nullable=False)
            batch_op.alter_column('phone', existing_type=sa.String(length=32), nullable=False)
            for column in ('pii_kid', 'id_number_index', 'phone_index', 'address_enc', 'id_number_enc', 'phone_enc',
                           'name_enc'):
                batch_op.drop_column(column)
    op.drop_table('patient_keys')
