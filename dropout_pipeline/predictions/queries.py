"""The legacy system's queries, kept for the summary and the web app.

Every learner with features is shown, predicted or not. One not predicted yet has no
score and no level (NULL): the legacy system showed a made-up 50 and MEDIUM, which a
teacher cannot tell from a real prediction.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.modeling.metrics import WORKLIST_SHARE, worklist_size
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import read_frame

e, f, p = schema.enrollments, schema.student_features, schema.predictions


def students_with_latest_prediction(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    latest = sa.and_(p.c.user_id == f.c.user_id, p.c.course_id == f.c.course_id, p.c.is_latest == sa.true())
    query = (
        sa.select(
            f.c.user_id,
            e.c.full_name,
            e.c.email,
            f.c.mooc_grade_percentage,
            f.c.mooc_completion_rate,
            f.c.days_since_last_activity,
            p.c.fail_risk_score,
            p.c.risk_level,
            p.c.dropout_risk_score,
            p.c.reasons,
            p.c.model_name,
            p.c.model_version,
            p.c.predicted_at,
        )
        .select_from(f.join(e, sa.and_(e.c.user_id == f.c.user_id, e.c.course_id == f.c.course_id)).outerjoin(p, latest))
        .where(f.c.course_id == course_id)
        .order_by(p.c.fail_risk_score.is_(None), p.c.fail_risk_score.desc(), f.c.user_id)  # not predicted yet: last
    )
    return read_frame(connection, query)


def worklist_share(connection: sa.Connection, course_id: str) -> float:
    """The course's worklist share: its own (course_model_mapping), else the default."""
    mapping = connection.execute(
        sa.select(schema.course_model_mapping.c.worklist_share).where(schema.course_model_mapping.c.course_id == course_id)
    ).scalar()
    return mapping if mapping is not None else WORKLIST_SHARE


def _latest_of_enrolled(course_id: str) -> tuple[sa.FromClause, sa.ColumnElement[bool]]:
    return (
        p.join(e, sa.and_(e.c.user_id == p.c.user_id, e.c.course_id == p.c.course_id)),
        sa.and_(p.c.course_id == course_id, p.c.is_latest == sa.true()),
    )


WORKLIST_ORDER = (p.c.fail_risk_score.desc(), p.c.user_id)  # the riskiest first; ties by learner


def worklist_length(connection: sa.Connection, course_id: str) -> int:
    """How many learners the course's worklist holds: its share of the predicted learners."""
    joined, condition = _latest_of_enrolled(course_id)
    predicted = connection.execute(sa.select(sa.func.count()).select_from(joined).where(condition)).scalar()
    return worklist_size(predicted, worklist_share(connection, course_id))


def worklist(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    """The learners a teacher follows up this week: the riskiest predicted learners, as many
    as the course's worklist share (course_model_mapping, else the default) of its
    predicted learners. A learner not predicted yet is never on it."""
    joined, condition = _latest_of_enrolled(course_id)
    query = (
        sa.select(p.c.user_id, e.c.full_name, p.c.fail_risk_score, p.c.risk_level, p.c.dropout_risk_score, p.c.reasons, p.c.snapshot_date)
        .select_from(joined)
        .where(condition)
        .order_by(*WORKLIST_ORDER)
        .limit(worklist_length(connection, course_id))
    )
    return read_frame(connection, query)


def prediction_history(connection: sa.Connection, user_id: int, course_id: str) -> pd.DataFrame:
    query = (
        sa.select(
            p.c.predicted_at, p.c.model_name, p.c.model_version, p.c.fail_risk_score, p.c.risk_level,
            p.c.snapshot_date, p.c.snapshot_grade, p.c.snapshot_completion_rate, p.c.reasons,
        )
        .where(p.c.user_id == user_id, p.c.course_id == course_id)
        .order_by(p.c.predicted_at, p.c.id)
    )
    return read_frame(connection, query)


def model_comparison(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    query = (
        sa.select(
            p.c.model_name,
            p.c.model_version,
            sa.func.count().label("total_predictions"),
            sa.func.avg(p.c.fail_risk_score).label("avg_risk"),
            sa.func.sum(sa.case((p.c.risk_level == "HIGH", 1), else_=0)).label("high_risk_count"),
            sa.func.min(p.c.predicted_at).label("first_prediction"),
            sa.func.max(p.c.predicted_at).label("last_prediction"),
        )
        .where(p.c.course_id == course_id)
        .group_by(p.c.model_name, p.c.model_version)
        .order_by(p.c.model_name, p.c.model_version)
    )
    return read_frame(connection, query)


def course_statistics(connection: sa.Connection, course_id: str, high_from: float = 70.0) -> dict:
    latest = sa.and_(p.c.user_id == f.c.user_id, p.c.course_id == f.c.course_id, p.c.is_latest == sa.true())
    score = p.c.fail_risk_score  # NULL until predicted: in no mean and no count of the at-risk
    query = (
        sa.select(
            sa.func.count().label("total_students"),
            sa.func.avg(score).label("avg_risk_score"),
            sa.func.avg(f.c.mooc_grade_percentage).label("avg_grade"),
            sa.func.avg(f.c.mooc_completion_rate).label("avg_completion_rate"),
            sa.func.sum(sa.case((sa.and_(score >= high_from, f.c.mooc_is_passed != 1), 1), else_=0)).label("high_risk_count"),
            sa.func.sum(sa.case((p.c.id.is_(None), 1), else_=0)).label("not_yet_predicted"),
        )
        .select_from(f.outerjoin(p, latest))
        .where(f.c.course_id == course_id)
    )
    row = connection.execute(query).mappings().one()
    return {  # a mean over no learner is None, never 0
        key: (None if value is None else float(value)) if key.startswith("avg") else int(value or 0) for key, value in row.items()
    }
