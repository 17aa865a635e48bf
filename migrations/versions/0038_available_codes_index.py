"""available codes index: a SKU's codes still for sale, in id order

Revision ID: 0038_available_codes_index
Revises: 0037_order_placement_function

Every claim of a code (`... WHERE sku_id = ? AND status = 'AVAILABLE' ORDER BY id LIMIT n
FOR UPDATE SKIP LOCKED`) walked the primary key from the lowest id, past every code of
other SKUs and every code the SKU had already sold or reserved: the later in a sale, the
longer each claim. The partial index holds only AVAILABLE codes, by SKU and id, so a claim
reads the first few entries. On PostgreSQL it is built without blocking writes to the pool
(CONCURRENTLY, outside the migration's transaction).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0038_available_codes_index'
down_revision = '0037_order_placement_function'
branch_labels = None
depends_on = None

AVAILABLE = sa.text("status = 'AVAILABLE'")


def upgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index('ix_card_code_available', 'card_code', ['sku_id', 'id'], unique=False,
                            postgresql_where=AVAILABLE, postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_card_code_available', 'card_code', ['sku_id', 'id'], unique=False, sqlite_where=AVAILABLE)


def downgrade() -> None:
    op.drop_index('ix_card_code_available', table_name='card_code')
