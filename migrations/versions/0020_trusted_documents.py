"""trusted documents: GraphQL documents operators registered, globally or for one key

Revision ID: 0020_trusted_documents
Revises: 0019_sale_events

With QUANYI_TRUSTED_DOCUMENTS=enforce, a caller runs only documents registered for everyone
or for its own key (transport/persisted.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020_trusted_documents'
down_revision = '0019_sale_events'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('trusted_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trusted_document')),
    sa.UniqueConstraint('key_prefix', 'digest', name='uq_trusted_document_key_prefix_digest')
    )


def downgrade() -> None:
    op.drop_table('trusted_document')
