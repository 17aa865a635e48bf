"""blind boxes: each box's weighted pool, its seed rounds (commit, then reveal) and every draw

Revision ID: 0032_blind_boxes
Revises: 0031_marketplaces
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0032_blind_boxes'
down_revision = '0031_marketplaces'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blind_box_item',
        sa.Column('box_sku_id', sa.Integer(), nullable=False),
        sa.Column('item_sku_id', sa.Integer(), nullable=False),
        sa.Column('weight', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['box_sku_id'], ['sku.id'], name=op.f('fk_blind_box_item_box_sku_id_sku')),
        sa.ForeignKeyConstraint(['item_sku_id'], ['sku.id'], name=op.f('fk_blind_box_item_item_sku_id_sku')),
        sa.PrimaryKeyConstraint('box_sku_id', 'item_sku_id', name=op.f('pk_blind_box_item')),
    )
    op.create_index(op.f('ix_blind_box_item_item_sku_id'), 'blind_box_item', ['item_sku_id'], unique=False)
    op.create_table(
        'draw_round',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('box_sku_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('seed_ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('commitment', sa.String(length=64), nullable=False),
        sa.Column('revealed_seed', sa.String(length=64), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revealed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['box_sku_id'], ['sku.id'], name=op.f('fk_draw_round_box_sku_id_sku')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_draw_round')),
        sa.UniqueConstraint('box_sku_id', 'number', name='uq_draw_round_box_number'),
    )
    op.create_index('ix_draw_round_box_status', 'draw_round', ['box_sku_id', 'status'], unique=False)
    op.create_table(
        'box_draw',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('box_sku_id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('line_id', sa.Integer(), nullable=False),
        sa.Column('order_number', sa.String(length=32), nullable=False),
        sa.Column('unit', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.JSON(), nullable=False),
        sa.Column('item_sku_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['draw_round.id'], name=op.f('fk_box_draw_round_id_draw_round')),
        sa.ForeignKeyConstraint(['box_sku_id'], ['sku.id'], name=op.f('fk_box_draw_box_sku_id_sku')),
        sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_box_draw_order_id_order')),
        sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_box_draw_line_id_order_line')),
        sa.ForeignKeyConstraint(['item_sku_id'], ['sku.id'], name=op.f('fk_box_draw_item_sku_id_sku')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_box_draw')),
        sa.UniqueConstraint('line_id', 'unit', name='uq_box_draw_line_unit'),
    )
    op.create_index(op.f('ix_box_draw_order_id'), 'box_draw', ['order_id'], unique=False)
    op.create_index('ix_box_draw_round', 'box_draw', ['round_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_table('box_draw')
    op.drop_table('draw_round')
    op.drop_index(op.f('ix_blind_box_item_item_sku_id'), table_name='blind_box_item')
    op.drop_table('blind_box_item')
