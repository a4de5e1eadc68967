"""Reasons behind the dropout-risk score, beside those behind the fail-risk score.

Predictions made before this revision have none (NULL): their dropout score was given
without reasons.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('predictions', sa.Column('dropout_reasons', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('predictions', 'dropout_reasons')
