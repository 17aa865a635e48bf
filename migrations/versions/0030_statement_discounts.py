"""statement discounts: what coupons took off the buyers' payments, in a statement's totals

Revision ID: 0030_statement_discounts
Revises: 0029_memberships
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0030_statement_discounts'
down_revision = '0029_memberships'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('settlement_statement') as batch:
        batch.add_column(sa.Column('discount_fen', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('settlement_statement') as batch:
        batch.drop_column('discount_fen')
