"""statement time zone: the zone a settlement statement's period was cut in

Revision ID: 0018_statement_time_zone
Revises: 0017_api_key_expiry

A statement's period is whole days, weeks or months of its channel's settlement time zone
(suppliers: Beijing time). The statement keeps that zone, so its period and its CSV file's
name read in it even after the channel's zone changes. Earlier statements were all cut in
Beijing time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018_statement_time_zone'
down_revision = '0017_api_key_expiry'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='Asia/Shanghai', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('settlement_statement', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
