"""services pricing (费用估算): price catalogue and packages

Revision ID: f60708090a05
Revises: f60708090a04
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a05'
down_revision: str | None = 'f60708090a04'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('price_items',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('category', sa.String(length=16), nullable=False),
    sa.Column('unit', sa.String(length=20), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('insurance_class', sa.String(length=1), nullable=False),
    sa.Column('self_pay_bp', sa.Integer(), nullable=True),
    sa.Column('equivalent_group', sa.String(length=40), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("insurance_class IN ('a', 'b', 'c')", name=op.f('ck_price_items_insurance_class')),
    sa.CheckConstraint("self_pay_bp IS NULL OR (self_pay_bp BETWEEN 0 AND 10000 AND insurance_class = 'b')", name=op.f('ck_price_items_self_pay_bp_range')),
    sa.CheckConstraint('price_fen >= 0', name=op.f('ck_price_items_price_not_negative')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_price_items_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_items')),
    sa.UniqueConstraint('institution_id', 'code', name=op.f('uq_price_items_institution_id_code'))
    )
    with op.batch_alter_table('price_items', schema=None) as batch_op:
        batch_op.create_index('ix_price_items_group', ['institution_id', 'equivalent_group'], unique=False)
    op.create_table('price_packages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_price_packages_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_packages')),
    sa.UniqueConstraint('institution_id', 'code', name=op.f('uq_price_packages_institution_id_code'))
    )
    op.create_table('price_package_items',
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.CheckConstraint('qty BETWEEN 1 AND 999', name=op.f('ck_price_package_items_qty_range')),
    sa.ForeignKeyConstraint(['item_id'], ['price_items.id'], name=op.f('fk_price_package_items_item_id_price_items')),
    sa.ForeignKeyConstraint(['package_id'], ['price_packages.id'], name=op.f('fk_price_package_items_package_id_price_packages')),
    sa.PrimaryKeyConstraint('package_id', 'item_id', name=op.f('pk_price_package_items'))
    )
    op.create_table('pricing_settings',
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.Column('class_b_self_pay_bp', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('class_b_self_pay_bp BETWEEN 0 AND 10000', name=op.f('ck_pricing_settings_class_b_range')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_pricing_settings_institution_id_institutions')),
    sa.PrimaryKeyConstraint('institution_id', name=op.f('pk_pricing_settings'))
    )
    op.create_table('price_import_uploads',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_price_import_uploads_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_import_uploads'))
    )
    with op.batch_alter_table('price_import_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_price_import_uploads_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('price_import_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_price_import_uploads_created_at'))
    op.drop_table('price_import_uploads')
    op.drop_table('pricing_settings')
    op.drop_table('price_package_items')
    op.drop_table('price_packages')
    with op.batch_alter_table('price_items', schema=None) as batch_op:
        batch_op.drop_index('ix_price_items_group')
    op.drop_table('price_items')
