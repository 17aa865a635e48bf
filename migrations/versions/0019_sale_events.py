"""sale events (预约抢购): scheduled sales of a SKU on a channel, and buyers registered for them

Revision ID: 0019_sale_events
Revises: 0018_statement_time_zone
Create Date: 2026-12-06 00:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0019_sale_events'
down_revision = '0018_statement_time_zone'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sale_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('registration_opens_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('registration_closes_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_sale_event_channel_id_channel')),
    sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name=op.f('fk_sale_event_sku_id_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_event'))
    )
    op.create_index('ix_sale_event_channel_sku', 'sale_event', ['channel_id', 'sku_id'], unique=False)
    op.create_table('sale_registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sale_id', sa.Integer(), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('email', sa.String(length=300), nullable=True),
    sa.Column('device', sa.String(length=128), nullable=True),
    sa.Column('account', sa.String(length=128), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sale_id'], ['sale_event.id'], name=op.f('fk_sale_registration_sale_id_sale_event')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sale_registration')),
    sa.UniqueConstraint('sale_id', 'phone', name='uq_sale_registration_phone'),
    sa.UniqueConstraint('sale_id', 'email', name='uq_sale_registration_email'),
    sa.UniqueConstraint('sale_id', 'device', name='uq_sale_registration_device'),
    sa.UniqueConstraint('sale_id', 'account', name='uq_sale_registration_account')
    )


def downgrade() -> None:
    op.drop_table('sale_registration')
    op.drop_index('ix_sale_event_channel_sku', table_name='sale_event')
    op.drop_table('sale_event')
