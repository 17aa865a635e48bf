"""Product center: versions and archiving, listings, SKU suppliers' codes and costs, the catalog change log

Revision ID: 0015_product_center
Revises: 0014_purchase_limits
Create Date: 2026-12-05 20:58:38.289726

A database that already sells keeps selling: every existing product is listed on every
existing channel (a new product, from now on, is on no channel until listed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0015_product_center'
down_revision = '0014_purchase_limits'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=160), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_change'))
    )
    with op.batch_alter_table('catalog_change', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_change_entity', ['entity', 'code', 'id'], unique=False)

    op.create_table('listing',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('listed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_listing_channel_id_channel')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_listing_product_id_product')),
    sa.PrimaryKeyConstraint('channel_id', 'product_id', name=op.f('pk_listing'))
    )
    with op.batch_alter_table('listing', schema=None) as batch_op:
        batch_op.create_index('ix_listing_channel_position', ['channel_id', 'position', 'product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_listing_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('brand', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settlement_time_zone', sa.String(length=64), server_default='Asia/Shanghai', nullable=False))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_urls', sa.JSON(), server_default='[]', nullable=False))
        batch_op.add_column(sa.Column('attributes', sa.JSON(), server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('sku', schema=None) as batch_op:
        batch_op.add_column(sa.Column('serial_uses', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('account_formats', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('sku_supplier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('product_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('cost_fen', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('supplier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))

    op.execute(
        "INSERT INTO listing (channel_id, product_id, position, listed_at) "
        "SELECT channel.id, product.id, product.id, CURRENT_TIMESTAMP FROM channel CROSS JOIN product"
    )


def downgrade() -> None:
    with op.batch_alter_table('supplier', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')

    with op.batch_alter_table('sku_supplier', schema=None) as batch_op:
        batch_op.drop_column('cost_fen')
        batch_op.drop_column('product_code')

    with op.batch_alter_table('sku', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')
        batch_op.drop_column('account_formats')
        batch_op.drop_column('serial_uses')

    with op.batch_alter_table('product', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')
        batch_op.drop_column('attributes')
        batch_op.drop_column('image_urls')

    with op.batch_alter_table('channel', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')
        batch_op.drop_column('settlement_time_zone')

    with op.batch_alter_table('category', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')

    with op.batch_alter_table('brand', schema=None) as batch_op:
        batch_op.drop_column('archived_at')
        batch_op.drop_column('version')

    with op.batch_alter_table('listing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_listing_product_id'))
        batch_op.drop_index('ix_listing_channel_position')

    op.drop_table('listing')
    with op.batch_alter_table('catalog_change', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_change_entity')

    op.drop_table('catalog_change')
