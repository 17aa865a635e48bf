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


# A confirmed statement's figures are those of the entries it claimed: its discount is
# computed from them as services/settlement/figures.py discount_column() does. A draft is
# recomputed whenever it is generated again.
BACKFILL = """
UPDATE settlement_statement SET discount_fen = COALESCE((
    SELECT SUM(CASE WHEN e.kind = 'DELIVERY' AND e.amount_fen < 0 THEN -e.amount_fen
                    WHEN e.kind = 'REFUND' AND e.amount_fen > 0 THEN -e.amount_fen ELSE 0 END)
    FROM ledger_entry e
    WHERE e.account = 'CHANNEL'
      AND ((settlement_statement.party = 'CHANNEL' AND e.channel_statement_id = settlement_statement.id)
        OR (settlement_statement.party = 'SUPPLIER' AND e.supplier_statement_id = settlement_statement.id))
), 0)
WHERE status <> 'DRAFT'
"""


def upgrade() -> None:
    with op.batch_alter_table('settlement_statement') as batch:
        batch.add_column(sa.Column('discount_fen', sa.BigInteger(), nullable=False, server_default='0'))
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('settlement_statement') as batch:
        batch.drop_column('discount_fen')
