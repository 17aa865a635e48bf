"""provider reconciliation: a provider's daily statement against our payments and refunds

Revision ID: 0027_provider_reconciliation
Revises: 0026_buyer_profiles
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0027_provider_reconciliation'
down_revision = '0026_buyer_profiles'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'provider_reconciliation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=16), nullable=False),
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.Column('matched', sa.Integer(), nullable=False),
        sa.Column('missing_on_their_side', sa.Integer(), nullable=False),
        sa.Column('missing_on_our_side', sa.Integer(), nullable=False),
        sa.Column('amount_mismatches', sa.Integer(), nullable=False),
        sa.Column('status_mismatches', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_reconciliation')),
    )
    op.create_table(
        'provider_reconciliation_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reconciliation_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('reference', sa.String(length=64), nullable=False),
        sa.Column('our_amount_fen', sa.BigInteger(), nullable=True),
        sa.Column('their_amount_fen', sa.BigInteger(), nullable=True),
        sa.Column('our_status', sa.String(length=16), nullable=True),
        sa.Column('their_status', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['reconciliation_id'], ['provider_reconciliation.id'],
                                name=op.f('fk_provider_reconciliation_item_reconciliation_id_provider_reconciliation')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_reconciliation_item')),
    )
    with op.batch_alter_table('provider_reconciliation_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_reconciliation_item_reconciliation_id'), ['reconciliation_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provider_reconciliation_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_reconciliation_item_reconciliation_id'))
    op.drop_table('provider_reconciliation_item')
    op.drop_table('provider_reconciliation')
