"""Model choice apart from the gate: each model_performance row holds, beside the ROC AUC
on the held-out courses (what the gate judges), the ROC AUC of the same scorer and course
week on the training courses' course-grouped out-of-fold predictions (what the candidate
was chosen on), with the rows it was measured on. NULL where nothing was chosen on those
rows (a held-out course's own row, or a retrain with too few training courses to cross-fit).
The AUC in double precision, as the held-out one since 0010 (SQLite's REAL is one already).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('model_performance', sa.Column('selection_roc_auc', sa.Double().with_variant(sa.Float(), 'sqlite'), nullable=True))
    op.add_column('model_performance', sa.Column('selection_n_samples', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('model_performance', 'selection_n_samples')
    op.drop_column('model_performance', 'selection_roc_auc')
