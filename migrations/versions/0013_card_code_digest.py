"""card codes: a secret is in the pool once, whatever SKU it was imported into

Revision ID: 0013_card_code_digest
Revises: 0012_quota_uses

The keyed digest of a secret was unique per SKU only, so one secret imported into two
SKUs could be sold twice. It becomes unique across the pool (every code not VOID).

A database may already hold such duplicates. They are settled before the index is built,
so the upgrade never fails on them: of the codes that share a secret, the one that went
furthest is kept (SOLD, then RESERVED, then AVAILABLE; the first imported among equals)
and every other becomes VOID. An AVAILABLE duplicate simply leaves the pool. A RESERVED or
SOLD one means the secret was already held or sold twice before this revision: its order
keeps its allocation (the buyer still sees the code), the code is marked VOID, and its id
is logged for an operator to look at. No secret is logged.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = '0013_card_code_digest'
down_revision = '0012_quota_uses'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

IN_POOL = "status <> 'VOID'"
_RANK = "CASE {t}.status WHEN 'SOLD' THEN 0 WHEN 'RESERVED' THEN 1 ELSE 2 END"
# A code is a duplicate when another code in the pool has its secret and went further,
# or went as far and was imported first. The first of each secret is never outranked,
# so the answer does not depend on the order the rows are updated in.
_OUTRANKED = f"""
card_code.{IN_POOL} AND EXISTS (
    SELECT 1 FROM card_code AS other
    WHERE other.secret_digest = card_code.secret_digest AND other.{IN_POOL} AND other.id <> card_code.id
      AND ({_RANK.format(t='other')} < {_RANK.format(t='card_code')}
           OR ({_RANK.format(t='other')} = {_RANK.format(t='card_code')} AND other.id < card_code.id))
)
"""


def upgrade() -> None:
    bind = op.get_bind()
    duplicates = bind.execute(sa.text(f"SELECT id, status FROM card_code WHERE {_OUTRANKED} ORDER BY id")).all()
    if duplicates:
        held = [row.id for row in duplicates if row.status != "AVAILABLE"]
        log.warning(
            "card codes whose secret is also in another code: %d made VOID (%d of them already reserved or sold: ids %s)",
            len(duplicates), len(held), held[:100],
        )
        bind.execute(sa.text(f"UPDATE card_code SET status = 'VOID' WHERE {_OUTRANKED}"))
    op.create_index(
        'uq_card_code_digest', 'card_code', ['secret_digest'], unique=True,
        postgresql_where=sa.text(IN_POOL), sqlite_where=sa.text(IN_POOL),
    )


def downgrade() -> None:
    # Codes made VOID by the upgrade stay VOID.
    op.drop_index('uq_card_code_digest', table_name='card_code')
