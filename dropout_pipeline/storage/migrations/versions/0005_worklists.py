"""Worklists: how many learners of a course a teacher follows up, and how well the
models fill such lists on held-out courses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 18:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PERFORMANCE_COLUMNS = ('worklist_share', 'worklist_precision', 'worklist_recall')


def upgrade() -> None:
    for name in PERFORMANCE_COLUMNS:
        op.add_column('model_performance', sa.Column(name, sa.Float(), nullable=True))
    op.add_column('course_model_mapping', sa.Column('worklist_share', sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column('course_model_mapping', 'worklist_share')
    for name in reversed(PERFORMANCE_COLUMNS):
        op.drop_column('model_performance', name)
