"""key budgets: an API key's own budget of query cost

Revision ID: 0009_key_budgets
Revises: 0008_settlement
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_key_budgets'
down_revision = '0008_settlement'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_maximum', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('budget_restore_rate', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_key', schema=None) as batch_op:
        batch_op.drop_column('budget_restore_rate')
        batch_op.drop_column('budget_maximum')
