"""Daily snapshots apart from the weekly history; an index for the planner.

The daily refresh used to record its features in student_features_history, beside
the replayed end-of-week snapshots that training_data is frozen from, so a learner
could have several rows in one course week and the course never froze. Refresh rows
now live in student_features_daily; this revision moves existing ones there.
training_data is not touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:25:52.102519
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('student_features_daily',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.Column('course_id', sa.String(length=255), nullable=False),
    sa.Column('enrollment_mode', sa.String(length=50), nullable=True),
    sa.Column('is_active_enrollment', sa.Integer(), nullable=True),
    sa.Column('days_since_enrollment', sa.Float(), nullable=True),
    sa.Column('enrolled_days_after_start', sa.Float(), nullable=True),
    sa.Column('course_week', sa.Integer(), nullable=True),
    sa.Column('course_elapsed_fraction', sa.Float(), nullable=True),
    sa.Column('course_duration_weeks', sa.Float(), nullable=True),
    sa.Column('mooc_grade_percentage', sa.Float(), nullable=True),
    sa.Column('mooc_letter_grade', sa.String(length=50), nullable=True),
    sa.Column('mooc_is_passed', sa.Integer(), nullable=True),
    sa.Column('graded_sections_total', sa.Integer(), nullable=True),
    sa.Column('graded_sections_attempted', sa.Integer(), nullable=True),
    sa.Column('graded_attempt_rate', sa.Float(), nullable=True),
    sa.Column('attempted_sections_avg_percent', sa.Float(), nullable=True),
    sa.Column('total_blocks', sa.Integer(), nullable=True),
    sa.Column('completed_blocks', sa.Integer(), nullable=True),
    sa.Column('progress_percent', sa.Float(), nullable=True),
    sa.Column('mooc_completion_rate', sa.Float(), nullable=True),
    sa.Column('has_any_activity', sa.Integer(), nullable=True),
    sa.Column('days_since_last_activity', sa.Float(), nullable=True),
    sa.Column('days_inactive_share', sa.Float(), nullable=True),
    sa.Column('discussion_threads_count', sa.Integer(), nullable=True),
    sa.Column('discussion_comments_count', sa.Integer(), nullable=True),
    sa.Column('discussion_total_interactions', sa.Integer(), nullable=True),
    sa.Column('discussion_questions_count', sa.Integer(), nullable=True),
    sa.Column('discussion_total_upvotes', sa.Integer(), nullable=True),
    sa.Column('h5p_total_contents', sa.Integer(), nullable=True),
    sa.Column('h5p_completed_contents', sa.Integer(), nullable=True),
    sa.Column('h5p_completion_rate', sa.Float(), nullable=True),
    sa.Column('h5p_score_percentage', sa.Float(), nullable=True),
    sa.Column('h5p_avg_attempts', sa.Float(), nullable=True),
    sa.Column('h5p_days_since_last_finish', sa.Float(), nullable=True),
    sa.Column('video_total_videos', sa.Integer(), nullable=True),
    sa.Column('video_completed_videos', sa.Integer(), nullable=True),
    sa.Column('video_in_progress_videos', sa.Integer(), nullable=True),
    sa.Column('video_watch_time_minutes', sa.Float(), nullable=True),
    sa.Column('video_watch_ratio', sa.Float(), nullable=True),
    sa.Column('video_days_since_last_watch', sa.Float(), nullable=True),
    sa.Column('dashboard_overall_completion', sa.Float(), nullable=True),
    sa.Column('dashboard_completed_items', sa.Integer(), nullable=True),
    sa.Column('grade_percentile_in_course', sa.Float(), nullable=True),
    sa.Column('completion_percentile_in_course', sa.Float(), nullable=True),
    sa.Column('grade_minus_course_mean', sa.Float(), nullable=True),
    sa.Column('snapshot_date', sa.Date(), nullable=False),
    sa.Column('snapshot_week', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_student_features_daily')),
    sa.UniqueConstraint('user_id', 'course_id', 'snapshot_date', name=op.f('uq_student_features_daily_user_id_course_id_snapshot_date'))
    )
    op.create_index(op.f('ix_student_features_daily_course_id'), 'student_features_daily', ['course_id'], unique=False)
    op.create_index('ix_predictions_latest_by_course', 'predictions', ['is_latest', 'course_id', 'snapshot_date'], unique=False)
    _move_refresh_rows_out_of_history()


def _snapshot_columns() -> str:
    names = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("student_features_history") if c["name"] != "id"]
    return ", ".join(op.get_bind().dialect.identifier_preparer.quote(name) for name in names)


def _move_refresh_rows_out_of_history() -> None:
    """Rows a daily refresh wrote into the history move to student_features_daily.

    A replay writes all its dates in one transaction with one `recorded_at`; a refresh
    writes a single date. So a (course, recorded_at) group spanning one date is a
    refresh. (A replay of a single date moves too: the next freeze replays it again,
    which is safe; the other way round would mix refresh rows into training data.)
    """
    bind = op.get_bind()
    history = sa.table("student_features_history", sa.column("course_id"), sa.column("snapshot_date"), sa.column("recorded_at"))
    groups = bind.execute(
        sa.select(history.c.course_id, history.c.recorded_at)
        .group_by(history.c.course_id, history.c.recorded_at)
        .having(sa.func.count(sa.distinct(history.c.snapshot_date)) == 1)
    ).all()
    columns = _snapshot_columns()
    for course_id, recorded_at in groups:
        where = {"course_id": course_id, "recorded_at": recorded_at}
        bind.execute(
            sa.text(f"INSERT INTO student_features_daily ({columns}) SELECT {columns} FROM student_features_history "
                    "WHERE course_id = :course_id AND recorded_at = :recorded_at"),
            where,
        )
        bind.execute(sa.text("DELETE FROM student_features_history WHERE course_id = :course_id AND recorded_at = :recorded_at"), where)


def downgrade() -> None:
    columns = _snapshot_columns()
    op.execute(
        f"INSERT INTO student_features_history ({columns}) SELECT {columns} FROM student_features_daily d "
        "WHERE NOT EXISTS (SELECT 1 FROM student_features_history h WHERE h.user_id = d.user_id "
        "AND h.course_id = d.course_id AND h.snapshot_date = d.snapshot_date)"
    )
    op.drop_index('ix_predictions_latest_by_course', table_name='predictions')
    op.drop_index(op.f('ix_student_features_daily_course_id'), table_name='student_features_daily')
    op.drop_table('student_features_daily')
