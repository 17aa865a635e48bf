"""marketplaces: each channel's connection to its marketplace's open platform, and every trade it took

Revision ID: 0031_marketplaces
Revises: 0030_statement_discounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0031_marketplaces'
down_revision = '0030_statement_discounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'marketplace_connection',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('adapter', sa.String(length=32), nullable=False),
        sa.Column('base_url', sa.String(length=500), nullable=False),
        sa.Column('app_key', sa.String(length=100), nullable=False),
        sa.Column('secret_ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('outer_ids', sa.JSON(), nullable=False),
        sa.Column('poll_seconds', sa.Integer(), nullable=False),
        sa.Column('timeout_seconds', sa.Float(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('trades_cursor', sa.DateTime(timezone=True), nullable=True),
        sa.Column('refunds_cursor', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_pull_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_marketplace_connection_channel_id_channel')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketplace_connection')),
        sa.UniqueConstraint('channel_id', name=op.f('uq_marketplace_connection_channel_id')),
    )
    op.create_table(
        'marketplace_order',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('tid', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('order_id', sa.Integer(), nullable=True),
        sa.Column('source', sa.String(length=8), nullable=False),
        sa.Column('seen', sa.Integer(), nullable=False),
        sa.Column('lines', sa.JSON(), nullable=False),
        sa.Column('paid_fen', sa.Integer(), nullable=False),
        sa.Column('report_status', sa.String(length=16), nullable=True),
        sa.Column('report_attempts', sa.Integer(), nullable=False),
        sa.Column('report_error', sa.String(length=300), nullable=True),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('refund_id', sa.String(length=64), nullable=True),
        sa.Column('refund_status', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_marketplace_order_channel_id_channel')),
        sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_marketplace_order_order_id_order')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_marketplace_order')),
        sa.UniqueConstraint('channel_id', 'tid', name='uq_marketplace_order_channel_tid'),
    )
    op.create_index('ix_marketplace_order_status', 'marketplace_order', ['status', 'id'], unique=False)
    op.create_index(op.f('ix_marketplace_order_order_id'), 'marketplace_order', ['order_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_marketplace_order_order_id'), table_name='marketplace_order')
    op.drop_index('ix_marketplace_order_status', table_name='marketplace_order')
    op.drop_table('marketplace_order')
    op.drop_table('marketplace_connection')
