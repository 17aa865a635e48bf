"""risk rules, their change history, and verdicts; indexes for account age

Revision ID: 0006_risk
Revises: 0005
Create Date: 2026-11-25 19:17:27.206991
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006_risk'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('risk_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('VELOCITY', 'PHONE_SEGMENT', 'BLACKLIST', 'AMOUNT_LIMIT', 'QUANTITY_LIMIT', 'ACCOUNT_SPREAD', name='rulekind', native_enum=False, length=24), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('action', sa.Enum('PASS', 'REVIEW', 'REJECT', name='decision', native_enum=False, length=24), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_risk_rule_channel_id_channel')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_rule')),
    sa.UniqueConstraint('name', name=op.f('uq_risk_rule_name'))
    )
    op.create_table('risk_rule_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rule_id'], ['risk_rule.id'], name=op.f('fk_risk_rule_change_rule_id_risk_rule')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_rule_change'))
    )
    with op.batch_alter_table('risk_rule_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_rule_change_rule_id'), ['rule_id'], unique=False)

    op.create_table('risk_verdict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('decision', sa.Enum('PASS', 'REVIEW', 'REJECT', name='decision', native_enum=False, length=24), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_risk_verdict_channel_id_channel')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_risk_verdict_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_verdict')),
    sa.UniqueConstraint('order_id', name=op.f('uq_risk_verdict_order_id'))
    )
    with op.batch_alter_table('risk_verdict', schema=None) as batch_op:
        batch_op.create_index('ix_risk_verdict_channel', ['channel_id', 'id'], unique=False)
        batch_op.create_index('ix_risk_verdict_created', ['created_at'], unique=False)
        batch_op.create_index('ix_risk_verdict_decision', ['decision', 'id'], unique=False)

    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.create_index('ix_order_buyer_email', ['buyer_email', 'created_at'], unique=False)
        batch_op.create_index('ix_order_recharge_account', ['recharge_account', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('order', schema=None) as batch_op:
        batch_op.drop_index('ix_order_recharge_account')
        batch_op.drop_index('ix_order_buyer_email')

    with op.batch_alter_table('risk_verdict', schema=None) as batch_op:
        batch_op.drop_index('ix_risk_verdict_decision')
        batch_op.drop_index('ix_risk_verdict_created')
        batch_op.drop_index('ix_risk_verdict_channel')

    op.drop_table('risk_verdict')
    with op.batch_alter_table('risk_rule_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_rule_change_rule_id'))

    op.drop_table('risk_rule_change')
    op.drop_table('risk_rule')
