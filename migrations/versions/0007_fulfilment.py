"""Fulfilment: jobs, deliveries, top-ups, refunds, reveal audit; supplier connections

Revision ID: 0007_fulfilment
Revises: 0005
Create Date: 2026-11-25 19:15:07.466603
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007_fulfilment'
down_revision = '0006_risk'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_job_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('key', name=op.f('uq_job_key'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_due', ['status', 'run_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_order_id'), ['order_id'], unique=False)

    op.create_table('refund',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_ids', sa.String(length=500), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_refund_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refund')),
    sa.UniqueConstraint('key', name=op.f('uq_refund_key'))
    )
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refund_order_id'), ['order_id'], unique=False)

    op.create_table('job_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_job_attempt_job_id_job')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_attempt'))
    )
    with op.batch_alter_table('job_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_attempt_job_id'), ['job_id'], unique=False)

    op.create_table('code_reveal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_code_reveal_line_id_order_line')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_code_reveal_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_code_reveal'))
    )
    with op.batch_alter_table('code_reveal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_code_reveal_order_id'), ['order_id'], unique=False)

    op.create_table('delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_delivery_line_id_order_line')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery'))
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_line', ['line_id', 'channel'], unique=True)

    op.create_table('inbox_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=2000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_inbox_message_line_id_order_line')),
    sa.ForeignKeyConstraint(['order_id'], ['order.id'], name=op.f('fk_inbox_message_order_id_order')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_message'))
    )
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_message_order_id'), ['order_id'], unique=False)

    op.create_table('topup_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('supplier_index', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=True),
    sa.Column('supplier_reference', sa.String(length=128), nullable=True),
    sa.Column('checks', sa.Integer(), nullable=False),
    sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_topup_task_line_id_order_line')),
    sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name=op.f('fk_topup_task_sku_id_sku')),
    sa.ForeignKeyConstraint(['supplier_id'], ['supplier.id'], name=op.f('fk_topup_task_supplier_id_supplier')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topup_task')),
    sa.UniqueConstraint('request_id', name=op.f('uq_topup_task_request_id'))
    )
    with op.batch_alter_table('topup_task', schema=None) as batch_op:
        batch_op.create_index('ix_topup_task_line', ['line_id'], unique=False)

    op.create_table('supplier_attempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('supplier_reference', sa.String(length=128), nullable=True),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['supplier_id'], ['supplier.id'], name=op.f('fk_supplier_attempt_supplier_id_supplier')),
    sa.ForeignKeyConstraint(['task_id'], ['topup_task.id'], name=op.f('fk_supplier_attempt_task_id_topup_task')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supplier_attempt'))
    )
    with op.batch_alter_table('supplier_attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supplier_attempt_task_id'), ['task_id'], unique=False)

    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('supplier_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_order_line_supplier_id_supplier'), 'supplier', ['supplier_id'], ['id'])

    with op.batch_alter_table('supplier', schema=None) as batch_op:
        batch_op.add_column(sa.Column('adapter', sa.String(length=32), server_default='http', nullable=False))
        batch_op.add_column(sa.Column('base_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('secret_ciphertext', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('timeout_seconds', sa.Double(), server_default='5', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('supplier', schema=None) as batch_op:
        batch_op.drop_column('timeout_seconds')
        batch_op.drop_column('secret_ciphertext')
        batch_op.drop_column('base_url')
        batch_op.drop_column('adapter')

    with op.batch_alter_table('order_line', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_order_line_supplier_id_supplier'), type_='foreignkey')
        batch_op.drop_column('supplier_id')
        batch_op.drop_column('outcome')

    with op.batch_alter_table('supplier_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supplier_attempt_task_id'))

    op.drop_table('supplier_attempt')
    with op.batch_alter_table('topup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_topup_task_line')

    op.drop_table('topup_task')
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_message_order_id'))

    op.drop_table('inbox_message')
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_line')

    op.drop_table('delivery')
    with op.batch_alter_table('code_reveal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_code_reveal_order_id'))

    op.drop_table('code_reveal')
    with op.batch_alter_table('job_attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_attempt_job_id'))

    op.drop_table('job_attempt')
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refund_order_id'))

    op.drop_table('refund')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_order_id'))
        batch_op.drop_index('ix_job_due')

    op.drop_table('job')
