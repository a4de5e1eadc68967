"""The web app: hashed bearer tokens and their scopes, browser sessions, append-only
feedback on predictions, and the indexes its queries read through.

prediction_feedback refuses UPDATE and DELETE on every engine (triggers, as training_data
in 0002): a teacher's record of what was done about a flag is never rewritten.

ix_predictions_latest_ranking holds a course's latest predictions in the worklist's order
(fail risk descending, then learner): a partial index on PostgreSQL (covering the level,
the dropout risk, the day and the row's id, so counts and rankings never touch the table) and SQLite;
MariaDB has no partial indexes, so is_latest leads its key instead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

MESSAGE = "prediction_feedback is append-only: rows can be inserted, never updated or deleted"


def _id_type():
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'api_tokens',
        sa.Column('id', _id_type(), primary_key=True, autoincrement=True),
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_api_tokens'),
        sa.UniqueConstraint('token_hash', name='uq_api_tokens_token_hash'),
    )
    op.create_table(
        'api_token_scopes',
        sa.Column('token_id', _id_type(), sa.ForeignKey('api_tokens.id'), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('value', sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint('token_id', 'kind', 'value', name='pk_api_token_scopes'),
    )
    op.create_table(
        'web_sessions',
        sa.Column('session_hash', sa.String(64), nullable=False),
        sa.Column('token_id', _id_type(), sa.ForeignKey('api_tokens.id'), nullable=False),
        sa.Column('csrf_token', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('session_hash', name='pk_web_sessions'),
    )
    op.create_index('ix_web_sessions_token_id', 'web_sessions', ['token_id'])
    op.create_table(
        'prediction_feedback',
        sa.Column('id', _id_type(), primary_key=True, autoincrement=True),
        sa.Column('prediction_id', _id_type(), sa.ForeignKey('predictions.id'), nullable=False),
        sa.Column('user_id', sa.BigInteger(), nullable=False),
        sa.Column('course_id', sa.String(255), nullable=False),
        sa.Column('action', sa.String(30), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('token_id', _id_type(), sa.ForeignKey('api_tokens.id'), nullable=False),
        sa.Column('created_by', sa.String(255), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_prediction_feedback'),
    )
    op.create_index('ix_prediction_feedback_prediction_id', 'prediction_feedback', ['prediction_id'])
    op.create_index('ix_prediction_feedback_course_user', 'prediction_feedback', ['course_id', 'user_id'])
    op.create_index('ix_predictions_course_user_date', 'predictions', ['course_id', 'user_id', 'snapshot_date'])
    op.create_index('ix_predictions_course_run', 'predictions', ['course_id', 'predicted_at', 'snapshot_date', 'risk_level', 'fail_risk_score'])
    _latest_ranking_index()
    _refuse_changes_to_feedback()


def _latest_ranking_index() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute('CREATE INDEX ix_predictions_latest_ranking ON predictions (course_id, fail_risk_score DESC, user_id) '
                   'INCLUDE (id, risk_level, dropout_risk_score, snapshot_date) WHERE is_latest')
    elif dialect == 'sqlite':
        op.execute('CREATE INDEX ix_predictions_latest_ranking ON predictions (course_id, fail_risk_score DESC, user_id) WHERE is_latest = 1')
    else:
        op.execute('CREATE INDEX ix_predictions_latest_ranking ON predictions (is_latest, course_id, fail_risk_score DESC, user_id)')


def _refuse_changes_to_feedback() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for action in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER prediction_feedback_no_{action.lower()} BEFORE {action} ON prediction_feedback "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )
    elif dialect == 'postgresql':
        op.execute(
            "CREATE FUNCTION prediction_feedback_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER prediction_feedback_append_only BEFORE UPDATE OR DELETE ON prediction_feedback "
            "FOR EACH ROW EXECUTE FUNCTION prediction_feedback_refuse_change()"
        )
        op.execute("CREATE TRIGGER prediction_feedback_no_truncate BEFORE TRUNCATE ON prediction_feedback "
                   "FOR EACH STATEMENT EXECUTE FUNCTION prediction_feedback_refuse_change()")
    elif dialect in ('mysql', 'mariadb'):
        for action in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER prediction_feedback_no_{action.lower()} BEFORE {action} ON prediction_feedback "
                f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{MESSAGE}'"
            )
    else:
        raise NotImplementedError(f"no append-only guarantee written for the {dialect} dialect")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index('ix_predictions_latest_ranking', table_name='predictions')
    op.drop_index('ix_predictions_course_run', table_name='predictions')
    op.drop_index('ix_predictions_course_user_date', table_name='predictions')
    op.drop_table('prediction_feedback')  # its triggers go with it
    if dialect == 'postgresql':
        op.execute('DROP FUNCTION prediction_feedback_refuse_change()')
    op.drop_table('web_sessions')
    op.drop_table('api_token_scopes')
    op.drop_table('api_tokens')
