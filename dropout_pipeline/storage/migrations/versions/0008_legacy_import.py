"""The legacy V1 import: end-of-course training rows kept apart, a quarantine, and the
`raw_data` compatibility view.

- training_data.snapshot_kind: 'weekly' (every row frozen by a replay, and the default) or
  'end_of_course' (a legacy V1 row: its features describe the end of the semester). Models
  never learn from end-of-course rows (storage.feature_tables.learnable): an early-week
  model trained on them would learn from what is only known at the end.
- legacy_quarantine: the source rows not imported, with the reason.
- Columns V1 never had, or could not date, may be NULL on imported rows: enrollments.created,
  mooc_grades.sections_total and sections_attempted, h5p_scores.attempts,
  dashboard_summary.h5p_completed_contents and video_completed_videos.
- The view `raw_data` has the V1 table's columns, read-only over the new tables, so the
  legacy reports keep working: current features of running courses and the end-of-course
  rows of finished ones, with each learner's latest prediction, enrolment date and position.

A downgrade is refused while training_data holds end-of-course rows (frozen rows are never
deleted, and without the column they would become learnable) or an imported row holds a
NULL the older schema refuses.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

RELAXED = (
    ('enrollments', 'created', sa.DateTime),
    ('mooc_grades', 'sections_total', sa.Integer),
    ('mooc_grades', 'sections_attempted', sa.Integer),
    ('h5p_scores', 'attempts', sa.Integer),
    ('dashboard_summary', 'h5p_completed_contents', sa.Integer),
    ('dashboard_summary', 'video_completed_videos', sa.Integer),
)

# The V1 raw_data columns, in V1's order, as the view gives them.
VIEW_COLUMNS = (
    'id', 'user_id', 'course_id', 'enrollment_date', 'mooc_grade_percentage', 'mooc_letter_grade', 'mooc_is_passed',
    'progress_percent', 'current_chapter', 'current_section', 'current_unit', 'mooc_completion_rate',
    'h5p_total_contents', 'video_total_videos', 'discussion_threads_count', 'discussion_comments_count',
    'discussion_total_interactions', 'days_since_last_activity', 'is_dropout', 'fail_risk_score',
    'dropout_risk_score', 'risk_level', 'predicted_at', 'updated_at',
)
_FEATURES = (
    'mooc_grade_percentage', 'mooc_letter_grade', 'progress_percent', 'mooc_completion_rate', 'h5p_total_contents',
    'video_total_videos', 'discussion_threads_count', 'discussion_comments_count', 'discussion_total_interactions',
    'days_since_last_activity',
)


def view_sql(dialect: str) -> str:
    true = 'TRUE' if dialect == 'postgresql' else '1'
    null_int = 'CAST(NULL AS INTEGER)' if dialect == 'postgresql' else 'NULL'
    features = ', '.join(_FEATURES)
    return f"""CREATE VIEW raw_data AS
SELECT ROW_NUMBER() OVER (ORDER BY b.course_id, b.user_id) AS id,
       b.user_id, b.course_id, e.created AS enrollment_date,
       b.mooc_grade_percentage, b.mooc_letter_grade, b.mooc_is_passed, b.progress_percent,
       mp.current_chapter, mp.current_section, mp.current_unit, b.mooc_completion_rate,
       b.h5p_total_contents, b.video_total_videos, b.discussion_threads_count, b.discussion_comments_count,
       b.discussion_total_interactions, b.days_since_last_activity, b.is_dropout,
       p.fail_risk_score, p.dropout_risk_score, p.risk_level, p.predicted_at, b.updated_at
FROM (
    SELECT user_id, course_id, {features}, mooc_is_passed, {null_int} AS is_dropout, updated_at
    FROM student_features
    UNION ALL
    SELECT user_id, course_id, {features},
           CASE WHEN is_passed THEN 1 ELSE 0 END AS mooc_is_passed,
           CASE WHEN is_dropout THEN 1 ELSE 0 END AS is_dropout,
           CAST(snapshot_date AS {'TIMESTAMP' if dialect == 'postgresql' else 'DATETIME'}) AS updated_at
    FROM training_data WHERE snapshot_kind = 'end_of_course'
) b
LEFT JOIN predictions p ON p.user_id = b.user_id AND p.course_id = b.course_id AND p.is_latest = {true}
LEFT JOIN enrollments e ON e.user_id = b.user_id AND e.course_id = b.course_id
LEFT JOIN mooc_progress mp ON mp.user_id = b.user_id AND mp.course_id = b.course_id"""


def upgrade() -> None:
    op.add_column('training_data', sa.Column('snapshot_kind', sa.String(20), nullable=False, server_default='weekly'))
    op.create_table(
        'legacy_quarantine',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('source_table', sa.String(64), nullable=False),
        sa.Column('source_id', sa.BigInteger(), nullable=False),
        sa.Column('part', sa.String(20), nullable=False),
        sa.Column('reason', sa.String(40), nullable=False),
        sa.Column('detail', sa.String(1000), nullable=False),
        sa.Column('course_id', sa.String(255), nullable=True),
        sa.Column('user_id', sa.BigInteger(), nullable=True),
        sa.Column('source_values', sa.JSON(), nullable=False),
        sa.Column('quarantined_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_legacy_quarantine'),
        sa.UniqueConstraint('source_table', 'source_id', 'part', name='uq_legacy_quarantine_source_table_source_id_part'),
    )
    for table, column, sql_type in RELAXED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sql_type(), nullable=True)
    op.execute(view_sql(op.get_bind().dialect.name))


def downgrade() -> None:
    bind = op.get_bind()
    legacy = bind.execute(sa.text("SELECT COUNT(*) FROM training_data WHERE snapshot_kind <> 'weekly'")).scalar()
    if legacy:
        raise RuntimeError(
            f'cannot downgrade below 0008: training_data holds {legacy} end-of-course rows imported from legacy V1; '
            'frozen rows are never deleted, and without snapshot_kind models would learn from them'
        )
    for table, column, _sql_type in RELAXED:
        nulls = bind.execute(sa.text(f'SELECT COUNT(*) FROM {table} WHERE {column} IS NULL')).scalar()
        if nulls:
            raise RuntimeError(f'cannot downgrade below 0008: {table}.{column} is NULL on {nulls} imported rows, which the older schema refuses')
    op.execute('DROP VIEW raw_data')
    for table, column, sql_type in reversed(RELAXED):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sql_type(), nullable=False)
    op.drop_table('legacy_quarantine')
    # A plain ALTER TABLE on every engine (SQLite has had DROP COLUMN since 3.35): a batch
    # rebuild would drop training_data's immutability triggers.
    op.drop_column('training_data', 'snapshot_kind')
