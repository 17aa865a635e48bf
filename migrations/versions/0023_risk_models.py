"""risk models: trained models, versioned, one active; labels of what attempts turned out to be

Revision ID: 0023_risk_models
Revises: 0022_provider_payments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0023_risk_models'
down_revision = '0022_provider_payments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'risk_model',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('record', sa.JSON(), nullable=False),
        sa.Column('metrics', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('version'),
    )
    op.create_index('ix_risk_model_active', 'risk_model', ['active'], unique=False)
    op.create_table(
        'risk_label',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('verdict_id', sa.Integer(), nullable=False),
        sa.Column('fraud', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['verdict_id'], ['risk_verdict.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('verdict_id'),
    )


def downgrade() -> None:
    op.drop_table('risk_label')
    op.drop_index('ix_risk_model_active', table_name='risk_model')
    op.drop_table('risk_model')
