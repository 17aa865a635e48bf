"""quota uses: what each order line took from which channel quota

Revision ID: 0012_quota_uses
Revises: 0011_canonical_contacts
Create Date: 2026-11-27 10:12:05.118204

Orders still open when this runs took quota without a record of it. They are given uses
newest first, never more than a quota's `used` (orders placed before the quota existed took
nothing): a later cancellation gives back at most what the quota counted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012_quota_uses'
down_revision = '0011_canonical_contacts'
branch_labels = None
depends_on = None

# Orders that may still give their stock (and so their quota) back: unpaid ones are
# cancelled or expire, paid ones are refunded when they cannot be fulfilled.
_OPEN = ('PENDING_RISK', 'REVIEW', 'PENDING_PAYMENT', 'PAID', 'FULFILLING')


def upgrade() -> None:
    op.create_table('quota_use',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('quota_id', sa.Integer(), nullable=False),
    sa.Column('sku_id', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['line_id'], ['order_line.id'], name=op.f('fk_quota_use_line_id_order_line')),
    sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name=op.f('fk_quota_use_sku_id_sku')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_use'))
    )
    with op.batch_alter_table('quota_use', schema=None) as batch_op:
        batch_op.create_index('ix_quota_use_line', ['line_id'], unique=False)
        batch_op.create_index('ix_quota_use_quota', ['quota_id'], unique=False)
    record_open_orders(op.get_bind())


def record_open_orders(bind: sa.engine.Connection) -> int:
    """Give each quota's open orders uses, newest first, up to what the quota counts."""
    quota = sa.table('channel_quota', sa.column('id'), sa.column('channel_id'), sa.column('sku_id'), sa.column('used'))
    order = sa.table('order', sa.column('id'), sa.column('channel_id'), sa.column('status'))
    line = sa.table('order_line', sa.column('id'), sa.column('order_id'), sa.column('sku_id'), sa.column('quantity'),
                    sa.column('outcome'))
    use = sa.table('quota_use', sa.column('line_id'), sa.column('quota_id'), sa.column('sku_id'), sa.column('units'),
                   sa.column('released_at', sa.DateTime(timezone=True)))
    uses: list[dict[str, object]] = []
    for quota_id, channel_id, sku_id, used in bind.execute(
        sa.select(quota.c.id, quota.c.channel_id, quota.c.sku_id, quota.c.used).where(quota.c.used > 0)
    ).all():
        left = used
        for line_id, quantity in bind.execute(
            sa.select(line.c.id, line.c.quantity)
            .join(order, order.c.id == line.c.order_id)
            .where(order.c.channel_id == channel_id, order.c.status.in_(_OPEN), line.c.sku_id == sku_id,
                   line.c.outcome.is_(None))
            .order_by(order.c.id.desc(), line.c.id.desc())
        ).all():
            if left <= 0:
                break
            units = min(quantity, left)
            uses.append({'line_id': line_id, 'quota_id': quota_id, 'sku_id': sku_id, 'units': units,
                         'released_at': None})
            left -= units
    if uses:
        bind.execute(sa.insert(use), uses)
    return len(uses)


def downgrade() -> None:
    with op.batch_alter_table('quota_use', schema=None) as batch_op:
        batch_op.drop_index('ix_quota_use_quota')
        batch_op.drop_index('ix_quota_use_line')

    op.drop_table('quota_use')
