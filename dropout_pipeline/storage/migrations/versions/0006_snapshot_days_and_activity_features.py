"""Training rows on days 1, 4 and 7 of each course week, and the features of recent behaviour.

training_data is keyed by snapshot date instead of week (three snapshots a week). On
SQLite the table is rebuilt for that (copied with its ids): its immutability triggers are
dropped and created again around the rebuild, and the rows of training_data_usage that
point at it are set aside and put back (SQLite checks foreign keys on the drop, and they
cannot be switched off inside the migration's transaction). New feature columns are NULL
on rows written before this revision (frozen rows are never rewritten), so no model learns
from those (storage.feature_tables.learnable). A downgrade is refused once a week holds
several snapshots.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

FEATURE_TABLES = ('student_features', 'student_features_history', 'student_features_daily', 'training_data')
NEW_FEATURES = (
    ('course_day', sa.Integer), ('events_last_7_days', sa.Integer), ('events_last_14_days', sa.Integer),
    ('activity_trend_7_days', sa.Integer), ('active_days', sa.Integer), ('weeks_active_share', sa.Float),
    ('first_week_events', sa.Integer), ('h5p_score_trend', sa.Float), ('sections_attempted_vs_due', sa.Float),
    ('course_has_h5p', sa.Integer), ('course_has_videos', sa.Integer), ('recent_activity_percentile_in_course', sa.Float),
)
MESSAGE = "training_data is immutable: rows can be inserted, never updated or deleted"


def _rekey_training_data(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == 'sqlite'
    usage = sa.table('training_data_usage', sa.column('training_data_id'), sa.column('model_name'),
                     sa.column('model_version'), sa.column('used_at'))
    if sqlite:
        used = [dict(row) for row in bind.execute(sa.select(usage)).mappings()]
        op.execute('DELETE FROM training_data_usage')
        for action in ('update', 'delete'):
            op.execute(f'DROP TRIGGER training_data_no_{action}')
    with op.batch_alter_table('training_data') as batch:
        batch.drop_constraint(f"uq_training_data_{'_'.join(old)}", type_='unique')
        batch.create_unique_constraint(f"uq_training_data_{'_'.join(new)}", list(new))
    if sqlite:
        for action in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER training_data_no_{action.lower()} BEFORE {action} ON training_data "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
        if used:
            op.bulk_insert(usage, used)


def upgrade() -> None:
    for table in FEATURE_TABLES:
        for name, sql_type in NEW_FEATURES:
            op.add_column(table, sa.Column(name, sql_type(), nullable=True))
    _rekey_training_data(('user_id', 'course_id', 'snapshot_week'), ('user_id', 'course_id', 'snapshot_date'))


def downgrade() -> None:
    several = op.get_bind().execute(sa.text(
        'SELECT COUNT(*) FROM (SELECT user_id, course_id, snapshot_week FROM training_data '
        'GROUP BY user_id, course_id, snapshot_week HAVING COUNT(*) > 1) weeks'
    )).scalar()
    if several:
        raise RuntimeError(
            f'cannot downgrade below 0006: training_data holds several snapshots of one week for {several} learners '
            'and courses, which the older key refuses, and frozen rows are never deleted'
        )
    _rekey_training_data(('user_id', 'course_id', 'snapshot_date'), ('user_id', 'course_id', 'snapshot_week'))
    for table in FEATURE_TABLES:
        for name, _sql_type in reversed(NEW_FEATURES):
            op.drop_column(table, name)
