"""api key expiry: a key may be issued to stop working at a given time

Revision ID: 0017_api_key_expiry
Revises: 0016_delivery_resends

Null: the key works until revoked. An expired key is refused like a revoked one, and the
WebSockets opened with it are closed (transport/sockets.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_api_key_expiry'
down_revision = '0016_delivery_resends'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('api_key', sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('api_key', 'expires_at')
