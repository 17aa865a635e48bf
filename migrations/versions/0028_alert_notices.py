"""alert notices: operator alerts told to the WeCom / DingTalk group robots, once each while they stand

Revision ID: 0028_alert_notices
Revises: 0027_provider_reconciliation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0028_alert_notices'
down_revision = '0027_provider_reconciliation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alert_notice',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('alert_notice')
