"""`dropout-pipeline status`: every course, where it stands, and what the planner does next."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from dropout_pipeline.lifecycle.facts import frozen_rows_per_course, per_course
from dropout_pipeline.lifecycle.plan import Plan
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.model_tables import model_label

COLUMNS = ("course", "state", "learners", "last refresh", "frozen rows", "latest prediction", "model", "next")


def _latest_predictions(connection: sa.Connection) -> dict[str, tuple[datetime, str]]:
    p = schema.predictions
    rows = connection.execute(
        sa.select(p.c.course_id, p.c.model_name, p.c.model_version, sa.func.max(p.c.predicted_at))
        .where(p.c.is_latest.is_(True))
        .group_by(p.c.course_id, p.c.model_name, p.c.model_version)
    ).all()
    latest: dict[str, tuple[datetime, str]] = {}
    for course_id, name, version, at in rows:
        if course_id not in latest or at > latest[course_id][0]:
            latest[course_id] = (at, model_label({"model_name": name, "model_version": version}))
    return latest


def status_rows(connection: sa.Connection, plan: Plan) -> list[tuple[str, ...]]:
    e, f = schema.enrollments, schema.student_features
    learners = per_course(connection, sa.select(e.c.course_id, sa.func.count()).group_by(e.c.course_id))
    refreshed = per_course(connection, sa.select(f.c.course_id, sa.func.max(f.c.updated_at)).group_by(f.c.course_id))
    frozen = frozen_rows_per_course(connection)
    predicted = _latest_predictions(connection)
    stamp = lambda moment: f"{moment:%Y-%m-%d %H:%M}" if moment else "-"  # noqa: E731
    return [
        (
            step.course_id,
            str(step.state),
            str(learners.get(step.course_id, 0)),
            stamp(refreshed.get(step.course_id)),
            str(frozen.get(step.course_id, 0)),
            stamp(predicted[step.course_id][0]) if step.course_id in predicted else "-",
            predicted[step.course_id][1] if step.course_id in predicted else "-",
            step.reason if step.action == "none" else f"{step.action}: {step.reason}",
        )
        for step in plan.courses
    ]


def render_status(plan: Plan, rows: list[tuple[str, ...]], timezone: str) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(COLUMNS[:-1])] if rows else []
    line = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False)) + "  " + cells[-1]  # noqa: E731
    header = [f"Courses on {plan.day} ({timezone}; times of refreshes and predictions in UTC)", f"Retrain: {plan.retrain_reason}", ""]
    return "\n".join(header + ([line(COLUMNS), *map(line, rows)] if rows else ["no course registered yet: run `dropout-pipeline run` or start the daemon"]))
