"""quota slots: a channel's quota on a SKU spread over slots that orders take from independently

Revision ID: 0036_quota_slots
Revises: 0035_market_refund_decisions

channel_quota gets a slot: a channel's quota on a SKU is now the sum of its slots' quotas,
what is used the sum of their `used`, unique per (channel, SKU, slot). Existing quotas
become slot 0, which is still correct; setting one again spreads it over the slots. A use
(quota_use) names the slot row it took from. Downgrading sums each pair's slots back into
its slot 0 row, its uses pointing there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0036_quota_slots'
down_revision = '0035_market_refund_decisions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('channel_quota') as batch:
        batch.add_column(sa.Column('slot', sa.Integer(), nullable=False, server_default='0'))
        batch.drop_constraint('uq_channel_quota_channel_sku', type_='unique')
        batch.create_unique_constraint('uq_channel_quota_channel_sku_slot', ['channel_id', 'sku_id', 'slot'])


def downgrade() -> None:
    bind = op.get_bind()
    pairs = bind.execute(sa.text(
        "SELECT channel_id, sku_id, min(id), sum(quota), sum(used) FROM channel_quota "
        "GROUP BY channel_id, sku_id HAVING count(*) > 1 ORDER BY channel_id, sku_id"
    )).all()
    for channel_id, sku_id, first, quota, used in pairs:
        others = {'channel': channel_id, 'sku': sku_id, 'first': first}
        bind.execute(sa.text(
            "UPDATE quota_use SET quota_id = :first WHERE quota_id IN "
            "(SELECT id FROM channel_quota WHERE channel_id = :channel AND sku_id = :sku AND id <> :first)"
        ), others)
        bind.execute(sa.text(
            "DELETE FROM channel_quota WHERE channel_id = :channel AND sku_id = :sku AND id <> :first"
        ), others)
        bind.execute(sa.text("UPDATE channel_quota SET quota = :quota, used = :used, slot = 0 WHERE id = :first"),
                     {'quota': int(quota), 'used': int(used), 'first': first})
    with op.batch_alter_table('channel_quota') as batch:
        batch.drop_constraint('uq_channel_quota_channel_sku_slot', type_='unique')
        batch.create_unique_constraint('uq_channel_quota_channel_sku', ['channel_id', 'sku_id'])
        batch.drop_column('slot')
