"""money owed and its trail: a refund's payment reference, prepaid on statements, exchanges
audited whether or not they moved the top-up

Revision ID: 0010_refunds_prepaid_audit
Revises: 0009_key_budgets
Create Date: 2026-11-27 09:00:00.000000

- refund.reference: the payment the refund returns. Filled for existing rows: a refund of a
  payment that arrived too late keeps the reference it was keyed by (its key becomes
  `payment:<order>:<reference>`, the key every payment an order cannot use now takes);
  any other refund returns the order's own payment.
- settlement_statement.prepaid_fen: what a channel paid in advance from its prepaid
  balance for the statement's lines (0 for statements generated before).
- supplier_attempt.applied: whether the exchange moved the top-up (an answer that arrives
  after a callback decided it is kept, not applied).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010_refunds_prepaid_audit'
down_revision = '0009_key_budgets'
branch_labels = None
depends_on = None

LATE = 'late-payment:'

refund = sa.table(
    'refund', sa.column('id', sa.Integer), sa.column('key', sa.String), sa.column('order_id', sa.Integer),
    sa.column('reference', sa.String),
)
order = sa.table('order', sa.column('id', sa.Integer), sa.column('payment_reference', sa.String))


def upgrade() -> None:
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=128), nullable=True))
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prepaid_fen', sa.BigInteger(), server_default='0', nullable=False))
    with op.batch_alter_table('supplier_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('applied', sa.Boolean(), server_default=sa.true(), nullable=False))

    connection = op.get_bind()
    # Late payments are rare: renamed one by one, in Python, the same on every backend.
    late = connection.execute(sa.select(refund.c.id, refund.c.key).where(refund.c.key.like(f'{LATE}%'))).all()
    for refund_id, key in late:
        order_id, _, reference = key.removeprefix(LATE).partition(':')
        connection.execute(
            sa.update(refund).where(refund.c.id == refund_id)
            .values(key=f'payment:{order_id}:{reference}', reference=reference)
        )
    paid_with = sa.select(order.c.payment_reference).where(order.c.id == refund.c.order_id).scalar_subquery()
    connection.execute(sa.update(refund).where(refund.c.reference.is_(None)).values(reference=paid_with))


def downgrade() -> None:
    connection = op.get_bind()
    owed = connection.execute(sa.select(refund.c.id, refund.c.key).where(refund.c.key.like('payment:%'))).all()
    for refund_id, key in owed:
        connection.execute(sa.update(refund).where(refund.c.id == refund_id).values(key=LATE + key.removeprefix('payment:')))
    with op.batch_alter_table('supplier_attempt', schema=None) as batch_op:
        batch_op.drop_column('applied')
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.drop_column('prepaid_fen')
    with op.batch_alter_table('refund', schema=None) as batch_op:
        batch_op.drop_column('reference')
