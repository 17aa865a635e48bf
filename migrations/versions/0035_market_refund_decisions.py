"""marketplace refund decisions: how an operator's answer to a marketplace refund was reported back

Revision ID: 0035_market_refund_decisions
Revises: 0034_stock_slots

marketplace_order gets the report of the decision on its refund (agreed or refused), sent
to the marketplace from the durable queue: its status, attempts and last error.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0035_market_refund_decisions'
down_revision = '0034_stock_slots'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('marketplace_order', sa.Column('refund_report_status', sa.String(length=16), nullable=True))
    op.add_column('marketplace_order', sa.Column('refund_report_attempts', sa.Integer(), nullable=False,
                                                 server_default='0'))
    op.add_column('marketplace_order', sa.Column('refund_report_error', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('marketplace_order') as batch:
        batch.drop_column('refund_report_error')
        batch.drop_column('refund_report_attempts')
        batch.drop_column('refund_report_status')
