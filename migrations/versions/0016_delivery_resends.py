"""delivery resends: how often a line's codes were sent again in its current window

Revision ID: 0016_delivery_resends
Revises: 0015_product_center

resendDelivery is limited per line (services/fulfilment/resends.py); one row per line that
was ever sent again holds the open window and the resends counted in it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016_delivery_resends'
down_revision = '0015_product_center'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('delivery_resend',
    sa.Column('line_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resends', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_delivery_resend_line_id_order_line')),
    sa.PrimaryKeyConstraint('line_id', name=op.f('pk_delivery_resend'))
    )


def downgrade() -> None:
    op.drop_table('delivery_resend')
