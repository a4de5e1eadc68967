"""Which running courses the daily refresh should predict today."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from dropout_pipeline.storage import schema


def courses_due_for_refresh(connection: sa.Connection, today: date) -> list[str]:
    """Running courses (started, not ended) whose mapping allows it: auto_predict on (the
    default when unmapped), and frequency `daily`, or `weekly` on Mondays."""
    courses, mapping = schema.courses, schema.course_model_mapping
    now = datetime.combine(today, datetime.min.time())
    rows = connection.execute(
        sa.select(courses.c.course_id, mapping.c.auto_predict, mapping.c.predict_frequency)
        .select_from(courses.outerjoin(mapping, mapping.c.course_id == courses.c.course_id))
        .where(courses.c.start <= now + timedelta(days=1), sa.or_(courses.c.end.is_(None), courses.c.end >= now))
        .order_by(courses.c.course_id)
    ).all()
    due = []
    for course_id, auto_predict, frequency in rows:
        if auto_predict is False:
            continue
        if (frequency or "daily") == "weekly" and today.weekday() != 0:
            continue
        due.append(course_id)
    return due
