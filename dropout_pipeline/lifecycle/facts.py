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
from dropout_pipeline.lifecycle.plan import CourseFacts, CourseState, FreezeFacts, TargetFacts, TrainingFacts, state_of
from dropout_pipeline.modeling.retrain import NIGHTLY_MODELS
from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.source_api.records import Course
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.lifecycle_tables import count_learnable, latest_freezes, newest_version, unseen_by_attempt, unseen_by_model
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


def _with_unlisted(connection: sa.Connection, catalogue: Sequence[CatalogueEntry]) -> list[tuple[CatalogueEntry, bool]]:
    """The catalogue, and every stored course it no longer lists (marked unlisted): a course
    that leaves the platform's listing between its end and its freeze is still frozen."""
    listed = {entry.calendar.course_id for entry in catalogue}
    stored = [entry for entry in catalogue_from_database(connection) if entry.calendar.course_id not in listed]
    return [(entry, True) for entry in catalogue] + [(entry, False) for entry in stored]


def course_facts(connection: sa.Connection, catalogue: Sequence[CatalogueEntry], partitions: set[str], day: date) -> list[CourseFacts]:
    courses, predictions, mapping = schema.courses, schema.predictions, schema.course_model_mapping
    stored = {row.course_id: (row.start, row.end) for row in connection.execute(sa.select(courses.c.course_id, courses.c.start, courses.c.end))}
    frozen = frozen_rows_per_course(connection)
    freezes = latest_freezes(connection)
    predicted = per_course(
        connection,
        sa.select(predictions.c.course_id, sa.func.max(predictions.c.snapshot_date)).where(predictions.c.is_latest.is_(True)).group_by(predictions.c.course_id),
    )
    mapped = {row.course_id: row for row in connection.execute(sa.select(mapping))}
    facts = []
    for entry, listed in _with_unlisted(connection, catalogue):
        calendar, course_id = entry.calendar, entry.calendar.course_id
        course_mapping = mapped.get(course_id)
        running = state_of(calendar, day) is CourseState.RUNNING
        freeze = freezes.get(course_id)
        facts.append(
            CourseFacts(
                calendar=calendar,
                enrollment_count=entry.enrollment_count,
                has_partition=course_id in partitions,
                stored=stored.get(course_id) == (calendar.start, calendar.end),
                frozen_rows=int(frozen.get(course_id, 0)),
                last_freeze=FreezeFacts(freeze["course_end"], freeze["outcome"], freeze["training_rows"], freeze["reason"]) if freeze else None,
                listed=listed,
                last_predicted=predicted.get(course_id),
                auto_predict=course_mapping.auto_predict if course_mapping else True,
                frequency=course_mapping.predict_frequency if course_mapping else "daily",
                model=model_label(model_for_course(connection, course_id, "fail")) if running else None,
            )
        )
    return facts


def _target_facts(connection: sa.Connection, model_name: str, learnable_rows: int) -> TargetFacts:
    """What the target's newest version learned from (its training_data_usage rows: exact,
    whatever rows older versions counted), or, when a later attempt gave no model, the rows
    that attempt saw (training_attempts)."""
    newest = newest_version(connection, model_name)
    attempt = unseen_by_attempt(connection, model_name, learnable_rows, after=newest["trained_at"] if newest else None)
    if attempt is not None:
        unseen, reason = attempt
        return TargetFacts(model_name, model_label(newest), unseen, reason)
    if newest is None:
        return TargetFacts(model_name, None, learnable_rows)
    return TargetFacts(model_name, model_label(newest), unseen_by_model(connection, model_name, newest["model_version"]))


def training_facts(connection: sa.Connection) -> TrainingFacts:
    """Learnable rows, and per nightly target how many of them it has not seen. The table
    only grows, so no clock is involved: a row unseen is a row frozen since."""
    learnable_rows = count_learnable(connection)
    return TrainingFacts(learnable_rows, tuple(_target_facts(connection, name, learnable_rows) for name in NIGHTLY_MODELS.values()))


def platform_catalogue(settings: ClientSettings, as_of: date | None) -> list[CatalogueEntry]:
    """The catalogue as the platform lists it now: what the sensor and `run` plan
    from, so a course the platform no longer lists is left alone."""
    courses, _stats = pull_catalog(settings, as_of)
    return catalogue_from_api(courses)
