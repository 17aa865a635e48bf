"""buyer profiles: figures per buyer pseudonym; orders keep the pseudonym when contacts are erased

Revision ID: 0026_buyer_profiles
Revises: 0025_outbound_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0026_buyer_profiles'
down_revision = '0025_outbound_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'buyer_profile',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('contact', sa.String(length=64), nullable=True),
        sa.Column('segment', sa.Enum('NEW', 'ACTIVE', 'AT_RISK', 'HIGH_VALUE', 'SUSPICIOUS', 'DORMANT',
                                     name='segment', native_enum=False, length=24), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('orders', sa.Integer(), nullable=False),
        sa.Column('coupon_orders', sa.Integer(), nullable=False),
        sa.Column('reviews', sa.Integer(), nullable=False),
        sa.Column('rejects', sa.Integer(), nullable=False),
        sa.Column('fraud_labels', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('spent', sa.JSON(), nullable=False),
        sa.Column('channels', sa.JSON(), nullable=False),
        sa.Column('categories', sa.JSON(), nullable=False),
        sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_buyer_profile_segment', 'buyer_profile', ['segment'], unique=False)
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('buyer_ref', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_column('buyer_ref')
    op.drop_index('ix_buyer_profile_segment', table_name='buyer_profile')
    op.drop_table('buyer_profile')
