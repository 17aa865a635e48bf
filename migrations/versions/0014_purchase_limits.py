"""purchase limits (限购) per channel and SKU, hold limits per channel, and buyers' tallies

Revision ID: 0014_purchase_limits
Revises: 0013_card_code_digest
Create Date: 2026-12-05 21:45:08.572428

Tallies start empty: orders placed before this revision count against no limit, and
ending them gives nothing back (`order.buyer_tallies` is null for them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014_purchase_limits'
down_revision = '0013_card_code_digest'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('buyer_tally',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=80), nullable=False),
    sa.Column('buyer', sa.String(length=300), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_tally')),
    sa.UniqueConstraint('scope', 'buyer', name='uq_buyer_tally_scope_buyer')
    )
    op.create_table('hold_limit',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('per_buyer', sa.Integer(), nullable=True),
    sa.Column('per_address', sa.Integer(), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_hold_limit_channel_id_channel')),
    sa.PrimaryKeyConstraint('channel_id', name=op.f('pk_hold_limit'))
    )
    op.create_table('purchase_limit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('per_order', sa.Integer(), nullable=True),
    sa.Column('per_buyer', sa.Integer(), nullable=True),
    sa.Column('period', sa.Enum('DAY', 'WEEK', 'MONTH', 'SALE', name='period', native_enum=False, length=24), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by', sa.String(length=120), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_purchase_limit_channel_id_channel')),
    sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name=op.f('fk_purchase_limit_sku_id_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchase_limit')),
    sa.UniqueConstraint('channel_id', 'sku_id', name='uq_purchase_limit_channel_sku')
    )
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('buyer_tallies', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('buyer_tallies')

    op.drop_table('purchase_limit')
    op.drop_table('hold_limit')
    op.drop_table('buyer_tally')
