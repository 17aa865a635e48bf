"""settlement: the ledger, statements and reconciliation reports

Revision ID: 0008_settlement
Revises: 0005
Create Date: 2026-11-25 19:16:42.266160
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008_settlement'
down_revision = '0007_fulfilment'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_transaction',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('DELIVERY', 'REFUND', 'PREPAID_PAYMENT', 'PREPAID_REFUND', 'TOP_UP', 'SUPPLIER_DEPOSIT', name='kind', native_enum=False, length=24), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction')),
    sa.UniqueConstraint('key', name=op.f('uq_ledger_transaction_key'))
    )
    op.create_table('settlement_statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('party', sa.Enum('CHANNEL', 'SUPPLIER', name='party', native_enum=False, length=24), nullable=False),
    sa.Column('party_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('period_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('DRAFT', 'CONFIRMED', 'PAID', name='statementstatus', native_enum=False, length=24), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gross_fen', sa.BigInteger(), nullable=False),
    sa.Column('cost_fen', sa.BigInteger(), nullable=False),
    sa.Column('commission_fen', sa.BigInteger(), nullable=False),
    sa.Column('margin_fen', sa.BigInteger(), nullable=False),
    sa.Column('refunds_fen', sa.BigInteger(), nullable=False),
    sa.Column('net_fen', sa.BigInteger(), nullable=False),
    sa.Column('order_count', sa.Integer(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_settlement_statement_channel_id_channel')),
    sa.ForeignKeyConstraint(['supplier_id'], ['supplier.id'], name=op.f('fk_settlement_statement_supplier_id_supplier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settlement_statement')),
    sa.UniqueConstraint('party', 'party_id', 'period_start', 'period_end', name='uq_settlement_statement_period')
    )
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_statement_channel_id'), ['channel_id'], unique=False)
        batch_op.create_index('ix_settlement_statement_status', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlement_statement_supplier_id'), ['supplier_id'], unique=False)

    op.create_table('reconciliation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('missing_on_their_side', sa.Integer(), nullable=False),
    sa.Column('missing_on_our_side', sa.Integer(), nullable=False),
    sa.Column('amount_mismatches', sa.Integer(), nullable=False),
    sa.Column('status_mismatches', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statement.id'], name=op.f('fk_reconciliation_statement_id_settlement_statement')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation'))
    )
    with op.batch_alter_table('reconciliation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_statement_id'), ['statement_id'], unique=False)

    op.create_table('reconciliation_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reconciliation_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('MISSING_ON_THEIR_SIDE', 'MISSING_ON_OUR_SIDE', 'AMOUNT_MISMATCH', 'STATUS_MISMATCH', name='discrepancy', native_enum=False, length=24), nullable=False),
    sa.Column('order_number', sa.String(length=128), nullable=False),
    sa.Column('our_amount_fen', sa.BigInteger(), nullable=True),
    sa.Column('their_amount_fen', sa.BigInteger(), nullable=True),
    sa.Column('our_status', sa.String(length=32), nullable=True),
    sa.Column('their_status', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['reconciliation_id'], ['reconciliation.id'], name=op.f('fk_reconciliation_item_reconciliation_id_reconciliation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_item'))
    )
    with op.batch_alter_table('reconciliation_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconciliation_item_reconciliation_id'), ['reconciliation_id'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('DELIVERY', 'REFUND', 'PREPAID_PAYMENT', 'PREPAID_REFUND', 'TOP_UP', 'SUPPLIER_DEPOSIT', name='kind', native_enum=False, length=24), nullable=False),
    sa.Column('account', sa.Enum('CHANNEL', 'SUPPLIER', 'COMMISSION', 'MARGIN', 'PREPAID', 'BANK', name='account', native_enum=False, length=24), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel_statement_id', sa.Integer(), nullable=True),
    sa.Column('supplier_statement_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['channel.id'], name=op.f('fk_ledger_entry_channel_id_channel')),
    sa.ForeignKeyConstraint(['channel_statement_id'], ['settlement_statement.id'], name=op.f('fk_ledger_entry_channel_statement_id_settlement_statement')),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_ledger_entry_line_id_order_line')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_ledger_entry_order_id_order')),
    sa.ForeignKeyConstraint(['supplier_id'], ['supplier.id'], name=op.f('fk_ledger_entry_supplier_id_supplier')),
    sa.ForeignKeyConstraint(['supplier_statement_id'], ['settlement_statement.id'], name=op.f('fk_ledger_entry_supplier_statement_id_settlement_statement')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_entry_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_at', ['at'], unique=False)
        batch_op.create_index('ix_ledger_entry_channel_at', ['channel_id', 'at'], unique=False)
        batch_op.create_index('ix_ledger_entry_channel_statement', ['channel_statement_id'], unique=False)
        batch_op.create_index('ix_ledger_entry_line', ['line_id'], unique=False)
        batch_op.create_index('ix_ledger_entry_supplier_at', ['supplier_id', 'at'], unique=False)
        batch_op.create_index('ix_ledger_entry_supplier_statement', ['supplier_statement_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_transaction_id'), ['transaction_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_transaction_id'))
        batch_op.drop_index('ix_ledger_entry_supplier_statement')
        batch_op.drop_index('ix_ledger_entry_supplier_at')
        batch_op.drop_index('ix_ledger_entry_line')
        batch_op.drop_index('ix_ledger_entry_channel_statement')
        batch_op.drop_index('ix_ledger_entry_channel_at')
        batch_op.drop_index('ix_ledger_entry_at')

    op.drop_table('ledger_entry')
    with op.batch_alter_table('reconciliation_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_item_reconciliation_id'))

    op.drop_table('reconciliation_item')
    with op.batch_alter_table('reconciliation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconciliation_statement_id'))

    op.drop_table('reconciliation')
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_statement_supplier_id'))
        batch_op.drop_index('ix_settlement_statement_status')
        batch_op.drop_index(batch_op.f('ix_settlement_statement_channel_id'))

    op.drop_table('settlement_statement')
    op.drop_table('ledger_transaction')
