"""stock slots: a top-up SKU's counter stock spread over slots that orders claim independently

Revision ID: 0034_stock_slots
Revises: 0033_lotteries

stock_level gets a slot (primary key (sku_id, slot)) and allocation the slot its counter
units came from. The counter stock there is spread over eight slots: slot 0 keeps what
open orders hold (their allocations are marked slot 0) and every slot gets an even share of
the rest. Downgrading sums each SKU's slots back into one row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0034_stock_slots'
down_revision = '0033_lotteries'
branch_labels = None
depends_on = None

SLOTS = 8  # domain/slots.py DEFAULT_SLOTS when this was written

_level = sa.table('stock_level', sa.column('sku_id', sa.Integer), sa.column('slot', sa.Integer),
                  sa.column('on_hand', sa.Integer), sa.column('reserved', sa.Integer))


def upgrade() -> None:
    if op.get_context().dialect.name == 'sqlite':
        _rebuild(['sku_id', 'slot'], "sku_id, 0, on_hand, reserved")
    else:
        op.add_column('stock_level', sa.Column('slot', sa.Integer(), nullable=False, server_default='0'))
        op.drop_constraint('pk_stock_level', 'stock_level', type_='primary')
        op.create_primary_key('pk_stock_level', 'stock_level', ['sku_id', 'slot'])
    op.add_column('allocation', sa.Column('slot', sa.Integer(), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE allocation SET slot = 0 WHERE source = 'COUNTER'"))
    rows = bind.execute(sa.text(
        "SELECT stock_level.sku_id, stock_level.on_hand, stock_level.reserved FROM stock_level "
        "JOIN sku ON sku.id = stock_level.sku_id WHERE sku.kind = 'DIRECT_RECHARGE' ORDER BY stock_level.sku_id"
    )).all()
    for sku_id, on_hand, reserved in rows:
        share, extra = divmod(max(on_hand - reserved, 0), SLOTS)
        units = [share + (1 if slot < extra else 0) for slot in range(SLOTS)]
        bind.execute(_level.update().where(_level.c.sku_id == sku_id, _level.c.slot == 0)
                     .values(on_hand=reserved + units[0]))
        bind.execute(_level.insert(), [
            {'sku_id': sku_id, 'slot': slot, 'on_hand': units[slot], 'reserved': 0} for slot in range(1, SLOTS)
        ])


def downgrade() -> None:
    bind = op.get_bind()
    totals = bind.execute(sa.text(
        "SELECT sku_id, sum(on_hand), sum(reserved) FROM stock_level GROUP BY sku_id ORDER BY sku_id"
    )).all()
    bind.execute(sa.text("DELETE FROM stock_level"))
    if totals:
        bind.execute(_level.insert(), [
            {'sku_id': sku_id, 'slot': 0, 'on_hand': int(on_hand), 'reserved': int(reserved)}
            for sku_id, on_hand, reserved in totals
        ])
    with op.batch_alter_table('allocation') as batch_op:
        batch_op.drop_column('slot')
    if op.get_context().dialect.name == 'sqlite':
        _rebuild(['sku_id'], "sku_id, on_hand, reserved")
    else:
        op.drop_constraint('pk_stock_level', 'stock_level', type_='primary')
        op.drop_column('stock_level', 'slot')
        op.create_primary_key('pk_stock_level', 'stock_level', ['sku_id'])


def _rebuild(key: list[str], columns: str) -> None:
    """SQLite cannot change a primary key: the table is made again with its rows."""
    op.create_table(
        'stock_level_new',
        sa.Column('sku_id', sa.Integer(), nullable=False),
        *([sa.Column('slot', sa.Integer(), nullable=False, server_default='0')] if 'slot' in key else []),
        sa.Column('on_hand', sa.Integer(), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['sku_id'], ['sku.id'], name='fk_stock_level_sku_id_sku'),
        sa.PrimaryKeyConstraint(*key, name='pk_stock_level'),
    )
    op.execute(f"INSERT INTO stock_level_new SELECT {columns} FROM stock_level")
    op.drop_table('stock_level')
    op.rename_table('stock_level_new', 'stock_level')
