"""top-up connection wait: since when a top-up waits for a supplier it can reach

Revision ID: 0021_topup_connection_wait
Revises: 0020_trusted_documents

A paid top-up whose remaining suppliers have no usable connection (no base URL, no secret,
an adapter kind this gateway lacks) waits for an operator to configure one, for a bounded
time, instead of being refunded at once. `waiting_since` is when it started to wait; the
refund comes when the wait runs out. Indexed for the dashboard and /metrics, which count
the top-ups waiting now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021_topup_connection_wait'
down_revision = '0020_trusted_documents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('topup_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_topup_task_waiting', ['waiting_since'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('topup_task', schema=None) as batch_op:
        batch_op.drop_index('ix_topup_task_waiting')
        batch_op.drop_column('waiting_since')
