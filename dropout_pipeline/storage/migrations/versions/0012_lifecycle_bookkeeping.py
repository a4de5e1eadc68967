"""The lifecycle's bookkeeping: step claims, training attempts that gave no model, and
course freezes.

- step_claims: one row per planned step (its run key) taken by a launcher; the primary key
  makes two launchers that planned the same step at once launch it once.
- training_attempts: a retrain of a target that could not give an honest model, with the
  learnable rows it saw, so it is tried again only once more rows are frozen.
- course_freezes: each freeze of a finished course, the end it was frozen at and what came
  of it. Courses frozen before this migration get one row each (their weekly rows, at the
  end stored in `courses`), so none of them is frozen again.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _id():
    return sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        'step_claims',
        sa.Column('step_key', sa.String(400), nullable=False),
        sa.Column('claimed_by', sa.String(50), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('step_key', name='pk_step_claims'),
    )
    op.create_table(
        'training_attempts',
        _id(),
        sa.Column('model_name', sa.String(100), nullable=False),
        sa.Column('learnable_rows', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('attempted_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_training_attempts'),
    )
    op.create_index('ix_training_attempts_model_name', 'training_attempts', ['model_name'])
    op.create_table(
        'course_freezes',
        _id(),
        sa.Column('course_id', sa.String(255), nullable=False),
        sa.Column('course_end', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.String(30), nullable=False),
        sa.Column('training_rows', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('frozen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_course_freezes'),
    )
    op.create_index('ix_course_freezes_course_id', 'course_freezes', ['course_id'])
    _freeze_what_was_frozen()


def _freeze_what_was_frozen() -> None:
    training = sa.table('training_data', sa.column('course_id'), sa.column('created_at'), sa.column('snapshot_kind'))
    courses = sa.table('courses', sa.column('course_id'), sa.column('end'))
    freezes = sa.table(
        'course_freezes', sa.column('course_id'), sa.column('course_end'), sa.column('outcome'),
        sa.column('training_rows'), sa.column('frozen_at'),
    )
    frozen = (
        sa.select(training.c.course_id, courses.c.end, sa.literal('frozen'), sa.func.count(), sa.func.max(training.c.created_at))
        .select_from(training.outerjoin(courses, courses.c.course_id == training.c.course_id))
        .where(training.c.snapshot_kind == 'weekly')
        .group_by(training.c.course_id, courses.c.end)
    )
    op.execute(freezes.insert().from_select(['course_id', 'course_end', 'outcome', 'training_rows', 'frozen_at'], frozen))

def downgrade() -> None:
    op.drop_index('ix_course_freezes_course_id', table_name='course_freezes')
    op.drop_table('course_freezes')
    op.drop_index('ix_training_attempts_model_name', table_name='training_attempts')
    op.drop_table('training_attempts')
    op.drop_table('step_claims')
