"""What the planner needs to know, read from the catalogue and the product's database.

Cheap enough to read every minute: aggregates over one row per learner (latest
predictions, through an index) or per course, never over the prediction history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.ingestion.rows import utc_naive
from dropout_pipeline.lifecycle.plan import CourseFacts, CourseState, TrainingFacts, state_of
from dropout_pipeline.modeling.retrain import NIGHTLY_MODELS
from dropout_pipeline.source_api.records import Course
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.model_tables import default_model, model_for_course


@dataclass(frozen=True)
class CatalogueEntry:
    calendar: CourseCalendar
    enrollment_count: int | None


def catalogue_from_api(courses: Iterable[Course]) -> list[CatalogueEntry]:
    return [CatalogueEntry(CourseCalendar(c.course_id, utc_naive(c.start), utc_naive(c.end)), c.enrollment_count) for c in courses]


def catalogue_from_database(connection: sa.Connection) -> list[CatalogueEntry]:
    """The catalogue as last registered: what the schedules and `status` plan from."""
    courses = schema.courses
    rows = connection.execute(sa.select(courses.c.course_id, courses.c.start, courses.c.end, courses.c.enrollment_count)).all()
    return [CatalogueEntry(CourseCalendar(course_id, start, end), count) for course_id, start, end, count in rows]


def _label(model: dict | None) -> str | None:
    return f"{model['model_name']} v{model['model_version']}" if model else None


def _per_course(connection: sa.Connection, query: sa.Select) -> dict:
    return dict(connection.execute(query).all())


def course_facts(connection: sa.Connection, catalogue: Sequence[CatalogueEntry], partitions: set[str], day: date) -> list[CourseFacts]:
    courses, training, predictions, mapping = schema.courses, schema.training_data, schema.predictions, schema.course_model_mapping
    stored = {row.course_id: (row.start, row.end) for row in connection.execute(sa.select(courses.c.course_id, courses.c.start, courses.c.end))}
    frozen = _per_course(connection, sa.select(training.c.course_id, sa.func.count()).group_by(training.c.course_id))
    predicted = _per_course(
        connection,
        sa.select(predictions.c.course_id, sa.func.max(predictions.c.snapshot_date)).where(predictions.c.is_latest.is_(True)).group_by(predictions.c.course_id),
    )
    mapped = {row.course_id: row for row in connection.execute(sa.select(mapping))}
    facts = []
    for entry in catalogue:
        calendar, course_id = entry.calendar, entry.calendar.course_id
        course_mapping = mapped.get(course_id)
        running = state_of(calendar, day) is CourseState.RUNNING
        facts.append(
            CourseFacts(
                calendar=calendar,
                enrollment_count=entry.enrollment_count,
                has_partition=course_id in partitions,
                stored=stored.get(course_id) == (calendar.start, calendar.end),
                frozen_rows=int(frozen.get(course_id, 0)),
                last_predicted=predicted.get(course_id),
                auto_predict=course_mapping.auto_predict if course_mapping else True,
                frequency=course_mapping.predict_frequency if course_mapping else "daily",
                model=_label(model_for_course(connection, course_id, "fail")) if running else None,
            )
        )
    return facts


def training_facts(connection: sa.Connection) -> TrainingFacts:
    training, registry = schema.training_data, schema.model_registry
    rows, newest = connection.execute(sa.select(sa.func.count(), sa.func.max(training.c.created_at))).one()
    last_trained = {
        target: connection.execute(sa.select(sa.func.max(registry.c.trained_at)).where(registry.c.model_name == name)).scalar()
        for target, name in NIGHTLY_MODELS.items()
    }
    defaults = {target: _label(default_model(connection, target)) for target in NIGHTLY_MODELS}
    return TrainingFacts(frozen_rows=int(rows), newest_frozen_at=newest, last_trained_at=last_trained, defaults=defaults)
