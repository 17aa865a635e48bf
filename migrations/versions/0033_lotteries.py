"""lotteries: entries numbered within a window, a committed seed, winners drawn once at a set time

Revision ID: 0033_lotteries
Revises: 0032_blind_boxes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0033_lotteries'
down_revision = '0032_blind_boxes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lottery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('draw_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('winners', sa.Integer(), nullable=False),
        sa.Column('per_buyer_limit', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('prize_sku_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('entry_count', sa.Integer(), nullable=False),
        sa.Column('seed_ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('commitment', sa.String(length=64), nullable=False),
        sa.Column('revealed_seed', sa.String(length=64), nullable=True),
        sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_lottery_channel_id_channel')),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_lottery_campaign_id_campaign')),
        sa.ForeignKeyConstraint(['prize_sku_id'], ['sku.id'], name=op.f('fk_lottery_prize_sku_id_sku')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lottery')),
    )
    op.create_index(op.f('ix_lottery_channel_id'), 'lottery', ['channel_id'], unique=False)
    op.create_table(
        'lottery_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('lottery_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('token_digest', sa.String(length=64), nullable=False),
        sa.Column('buyer_phone', sa.String(length=32), nullable=True),
        sa.Column('buyer_email', sa.String(length=254), nullable=True),
        sa.Column('device_id', sa.String(length=128), nullable=True),
        sa.Column('client_ip', sa.String(length=64), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('prize_ciphertext', sa.LargeBinary(), nullable=True),
        sa.Column('prize_code_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['lottery_id'], ['lottery.id'], name=op.f('fk_lottery_entry_lottery_id_lottery')),
        sa.ForeignKeyConstraint(['prize_code_id'], ['card_code.id'], name=op.f('fk_lottery_entry_prize_code_id_card_code')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lottery_entry')),
        sa.UniqueConstraint('lottery_id', 'number', name='uq_lottery_entry_number'),
        sa.UniqueConstraint('token_digest', name='uq_lottery_entry_token'),
    )
    op.create_index('ix_lottery_entry_lottery_status', 'lottery_entry', ['lottery_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_table('lottery_entry')
    op.drop_index(op.f('ix_lottery_channel_id'), table_name='lottery')
    op.drop_table('lottery')
