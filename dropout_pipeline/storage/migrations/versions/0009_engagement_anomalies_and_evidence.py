"""Engagement anomalies and evidence fusion: one row per learner and course each, replaced
by every run of the course (dropout_pipeline/analytics).

- engagement_anomalies: the Isolation Forest score (NULL when the course has too few
  learners), the flag, the threshold chosen on finished courses (NULL: none could be, and
  nobody is flagged), the score's reliability as evidence, and the features scored.
- anomaly_thresholds: the threshold as chosen on the finished courses, keyed by the count of
  learnable training rows it was chosen on (training_data is insert-only), so a course's
  daily run reuses it until a course is frozen.
- evidence_fusion: belief, plausibility, uncertainty, the conflict K, the combination rule
  (dempster | yager), the category, and each source's mass.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _learner_columns():
    return [
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.Column('course_id', sa.String(255), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        'engagement_anomalies',
        *_learner_columns(),
        sa.Column('snapshot_date', sa.Date(), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('is_flagged', sa.Boolean(), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=True),
        sa.Column('reliability', sa.Float(), nullable=False),
        sa.Column('features', sa.JSON(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_engagement_anomalies'),
        sa.UniqueConstraint('user_id', 'course_id', name='uq_engagement_anomalies_user_id_course_id'),
    )
    op.create_index('ix_engagement_anomalies_course_id', 'engagement_anomalies', ['course_id'])
    op.create_table(
        'anomaly_thresholds',
        sa.Column('training_rows', sa.Integer(), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=True),
        sa.Column('reliability', sa.Float(), nullable=False),
        sa.Column('f1', sa.Float(), nullable=True),
        sa.Column('precision', sa.Float(), nullable=True),
        sa.Column('recall', sa.Float(), nullable=True),
        sa.Column('flagged_share', sa.Float(), nullable=True),
        sa.Column('courses', sa.JSON(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('note', sa.String(500), nullable=False),
        sa.Column('chosen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('training_rows', name='pk_anomaly_thresholds'),
    )
    op.create_table(
        'evidence_fusion',
        *_learner_columns(),
        sa.Column('snapshot_date', sa.Date(), nullable=False),
        sa.Column('belief', sa.Float(), nullable=False),
        sa.Column('plausibility', sa.Float(), nullable=False),
        sa.Column('uncertainty', sa.Float(), nullable=False),
        sa.Column('conflict', sa.Float(), nullable=False),
        sa.Column('rule', sa.String(10), nullable=False),
        sa.Column('category', sa.String(20), nullable=False),
        sa.Column('sources', sa.JSON(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_evidence_fusion'),
        sa.UniqueConstraint('user_id', 'course_id', name='uq_evidence_fusion_user_id_course_id'),
    )
    op.create_index('ix_evidence_fusion_course_id', 'evidence_fusion', ['course_id'])


def downgrade() -> None:
    op.drop_index('ix_evidence_fusion_course_id', table_name='evidence_fusion')
    op.drop_table('evidence_fusion')
    op.drop_table('anomaly_thresholds')
    op.drop_index('ix_engagement_anomalies_course_id', table_name='engagement_anomalies')
    op.drop_table('engagement_anomalies')
