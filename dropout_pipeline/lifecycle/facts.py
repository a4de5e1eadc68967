"""What the planner needs to know, read from the platform's catalogue and the product's database.

Cheap enough to read every minute: aggregates over one row per learner (latest
predictions, through an index) or per course, never over the prediction history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.ingestion.pull import pull_catalog
from dropout_pipeline.ingestion.rows import utc_naive
from dropout_pipeline.lifecycle.plan import CourseFacts, CourseState, TrainingFacts, state_of
from dropout_pipeline.modeling.retrain import NIGHTLY_MODELS
from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.source_api.records import Course
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.feature_tables import learnable
from dropout_pipeline.storage.model_tables import model_for_course, model_label


@dataclass(frozen=True)
class CatalogueEntry:
    calendar: CourseCalendar
    enrollment_count: int | None


def catalogue_from_api(courses: Iterable[Course]) -> list[CatalogueEntry]:
    return [CatalogueEntry(CourseCalendar(c.course_id, utc_naive(c.start), utc_naive(c.end)), c.enrollment_count) for c in courses]


def catalogue_from_database(connection: sa.Connection) -> list[CatalogueEntry]:
    """The catalogue as last registered: what the 02:00 retrain and `status` plan from,
    without asking the platform."""
    courses = schema.courses
    rows = connection.execute(sa.select(courses.c.course_id, courses.c.start, courses.c.end, courses.c.enrollment_count)).all()
    return [CatalogueEntry(CourseCalendar(course_id, start, end), count) for course_id, start, end, count in rows]


def per_course(connection: sa.Connection, query: sa.Select) -> dict:
    """A (course_id, value) query as a dict."""
    return dict(connection.execute(query).all())


def frozen_rows_per_course(connection: sa.Connection) -> dict[str, int]:
    training = schema.training_data  # legacy end-of-course rows do not make a course frozen: its replay still runs
    return per_course(
        connection,
        sa.select(training.c.course_id, sa.func.count()).where(training.c.snapshot_kind == "weekly").group_by(training.c.course_id),
    )


def course_facts(connection: sa.Connection, catalogue: Sequence[CatalogueEntry], partitions: set[str], day: date) -> list[CourseFacts]:
    courses, predictions, mapping = schema.courses, schema.predictions, schema.course_model_mapping
    stored = {row.course_id: (row.start, row.end) for row in connection.execute(sa.select(courses.c.course_id, courses.c.start, courses.c.end))}
    frozen = frozen_rows_per_course(connection)
    predicted = per_course(
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
                model=model_label(model_for_course(connection, course_id, "fail")) if running else None,
            )
        )
    return facts


def training_facts(connection: sa.Connection) -> TrainingFacts:
    """Rows frozen, and the fewest the newest model of any target learned from: the table
    only grows, so more rows than that means rows some target has not seen (no clock
    involved), and a target that failed to train is tried again. None while a target has
    no model at all."""
    registry = schema.model_registry
    frozen = connection.execute(sa.select(sa.func.count()).select_from(schema.training_data).where(learnable())).scalar()
    learned_by_target = dict(connection.execute(
        sa.select(registry.c.model_name, sa.func.max(registry.c.training_rows))
        .where(registry.c.model_name.in_(list(NIGHTLY_MODELS.values())))
        .group_by(registry.c.model_name)
    ).all())
    learned = min(learned_by_target.values()) if len(learned_by_target) == len(NIGHTLY_MODELS) else None
    return TrainingFacts(frozen_rows=int(frozen), learned_rows=learned)


def platform_catalogue(settings: ClientSettings, as_of: date | None) -> list[CatalogueEntry]:
    """The catalogue as the platform lists it now: what the sensor and `run` plan
    from, so a course the platform no longer lists is left alone."""
    courses, _stats = pull_catalog(settings, as_of)
    return catalogue_from_api(courses)
