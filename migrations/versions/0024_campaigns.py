"""campaigns and coupons

Revision ID: 0024_campaigns
Revises: 0023_risk_models

Campaigns (a discount on some SKUs of a channel, within a window and a budget), their codes
kept as digests, each order's redemption, and the discount on orders and their lines.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0024_campaigns'
down_revision = '0023_risk_models'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaign',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=True),
    sa.Column('amount_off_fen', sa.BigInteger(), nullable=True),
    sa.Column('percent_off', sa.Integer(), nullable=True),
    sa.Column('max_discount_fen', sa.BigInteger(), nullable=True),
    sa.Column('price_fen', sa.BigInteger(), nullable=True),
    sa.Column('max_redemptions', sa.Integer(), nullable=True),
    sa.Column('redemptions', sa.Integer(), nullable=False),
    sa.Column('budget_fen', sa.BigInteger(), nullable=True),
    sa.Column('spent_fen', sa.BigInteger(), nullable=False),
    sa.Column('per_buyer_limit', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('subsidised', sa.Boolean(), nullable=False),
    sa.Column('bearer', sa.Enum('PLATFORM', 'CHANNEL', 'SUPPLIER', name='bearer', native_enum=False, length=24), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_campaign_channel_id_channel')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign'))
    )
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaign_channel_id'), ['channel_id'], unique=False)

    op.create_table('campaign_sku',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_campaign_sku_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name=op.f('fk_campaign_sku_sku_id_sku')),
    sa.PrimaryKeyConstraint('campaign_id', 'sku_id', name=op.f('pk_campaign_sku'))
    )
    op.create_table('coupon_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('single_use', sa.Boolean(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_coupon_code_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_coupon_code_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_code')),
    sa.UniqueConstraint('digest', name=op.f('uq_coupon_code_digest'))
    )
    with op.batch_alter_table('coupon_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coupon_code_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('coupon_redemption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('code_id', sa.Integer(), nullable=False),
    sa.Column('discount_fen', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_coupon_redemption_campaign_id_campaign')),
    sa.ForeignKeyConstraint(['code_id'], ['coupon_code.id'], name=op.f('fk_coupon_redemption_code_id_coupon_code')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_coupon_redemption_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coupon_redemption')),
    sa.UniqueConstraint('order_id', name=op.f('uq_coupon_redemption_order_id'))
    )
    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.create_index('ix_coupon_redemption_campaign', ['campaign_id', 'released_at'], unique=False)

    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('discount_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_order_campaign_id_campaign'), 'campaign', ['campaign_id'], ['id'])

    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('discount_fen', sa.BigInteger(), server_default='0', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_column('discount_fen')

    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_order_campaign_id_campaign'), type_='foreignkey')
        batch_op.drop_column('discount_fen')
        batch_op.drop_column('campaign_id')

    with op.batch_alter_table('coupon_redemption', schema=None) as batch_op:
        batch_op.drop_index('ix_coupon_redemption_campaign')

    op.drop_table('coupon_redemption')
    with op.batch_alter_table('coupon_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coupon_code_campaign_id'))

    op.drop_table('coupon_code')
    op.drop_table('campaign_sku')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaign_channel_id'))

    op.drop_table('campaign')
