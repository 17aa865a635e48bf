"""provider payments: accounts per channel, payments, refused notifications

Revision ID: 0022_provider_payments
Revises: 0021_topup_connection_wait

- payment_account: how a channel (or every channel: scope `*`) reaches WeChat Pay or Alipay;
  the merchant's private key and API v3 key sealed with the secret key.
- payment: a payment started through a provider for an order, once per order and provider;
  the provider's transaction id once per provider.
- payment_refusal: genuine notifications that could not be applied (wrong amount, currency,
  app id, unknown order), once per notification and reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0022_provider_payments'
down_revision = '0021_topup_connection_wait'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payment_account',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('scope', sa.String(length=32), nullable=False),
        sa.Column('app_id', sa.String(length=64), nullable=False),
        sa.Column('merchant_id', sa.String(length=64), nullable=False),
        sa.Column('base_url', sa.String(length=300), nullable=False),
        sa.Column('key_serial', sa.String(length=64), nullable=False),
        sa.Column('provider_key_id', sa.String(length=64), nullable=False),
        sa.Column('provider_public_key', sa.Text(), nullable=False),
        sa.Column('secret_ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_account')),
        sa.UniqueConstraint('provider', 'scope', name='uq_payment_account_provider_scope'),
    )
    op.create_table(
        'payment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('order_id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('handle', sa.String(length=512), nullable=True),
        sa.Column('transaction_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_payment_order_id_order')),
        sa.ForeignKeyConstraint(['account_id'], ['payment_account.id'], name=op.f('fk_payment_account_id_payment_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
        sa.UniqueConstraint('order_id', 'provider', name='uq_payment_order_provider'),
        sa.UniqueConstraint('provider', 'transaction_id', name='uq_payment_provider_transaction'),
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_order_id'), ['order_id'], unique=False)
    op.create_table(
        'payment_refusal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('order_number', sa.String(length=64), nullable=False),
        sa.Column('transaction_id', sa.String(length=64), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_refusal')),
        sa.UniqueConstraint('key', name=op.f('uq_payment_refusal_key')),
    )


def downgrade() -> None:
    op.drop_table('payment_refusal')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_order_id'))
    op.drop_table('payment')
    op.drop_table('payment_account')
