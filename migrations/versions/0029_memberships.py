"""memberships: direct top-up SKUs sold by subscription, renewed through a payment agreement

Revision ID: 0029_memberships
Revises: 0028_alert_notices
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0029_memberships'
down_revision = '0028_alert_notices'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'membership_plan',
        sa.Column('sku_id', sa.Integer(), sa.ForeignKey('sku.id'), nullable=False),
        sa.Column('period', sa.Enum('MONTH', 'QUARTER', 'YEAR', name='period', native_enum=False, length=24), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('cap_fen', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('sku_id'),
    )
    op.create_table(
        'membership',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('channel_id', sa.Integer(), sa.ForeignKey('channel.id'), nullable=False),
        sa.Column('sku_id', sa.Integer(), sa.ForeignKey('sku.id'), nullable=False),
        sa.Column('idempotency_key', sa.String(length=128), nullable=False),
        sa.Column('period', sa.Enum('MONTH', 'QUARTER', 'YEAR', name='period', native_enum=False, length=24), nullable=False),
        sa.Column('status', sa.Enum('ACTIVE', 'PAST_DUE', 'CANCELLED', 'LAPSED', name='membershipstatus',
                                    native_enum=False, length=24), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('agreement_id', sa.String(length=512), nullable=False),
        sa.Column('buyer_phone', sa.String(length=32), nullable=True),
        sa.Column('buyer_email', sa.String(length=254), nullable=True),
        sa.Column('recharge_account', sa.String(length=128), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('paid_periods', sa.Integer(), nullable=False),
        sa.Column('declined', sa.Integer(), nullable=False),
        sa.Column('last_order_id', sa.Integer(), sa.ForeignKey('order.id'), nullable=True),
        sa.Column('placed_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_by', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number'),
        sa.UniqueConstraint('channel_id', 'idempotency_key'),
    )
    op.create_index('ix_membership_channel_id', 'membership', ['channel_id'])
    op.create_index('ix_membership_status', 'membership', ['status', 'id'])
    op.create_table(
        'membership_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('membership_id', sa.Integer(), sa.ForeignKey('membership.id'), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('period', sa.Integer(), nullable=True),
        sa.Column('order_id', sa.Integer(), sa.ForeignKey('order.id'), nullable=True),
        sa.Column('amount_fen', sa.BigInteger(), nullable=True),
        sa.Column('detail', sa.String(length=200), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_membership_event_membership_id', 'membership_event', ['membership_id'])


def downgrade() -> None:
    op.drop_index('ix_membership_event_membership_id', table_name='membership_event')
    op.drop_table('membership_event')
    op.drop_index('ix_membership_status', table_name='membership')
    op.drop_index('ix_membership_channel_id', table_name='membership')
    op.drop_table('membership')
    op.drop_table('membership_plan')
