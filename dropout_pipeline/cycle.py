"""One full cycle of the early-warning system, as Dagster runs on a real instance.

discover courses -> rebuild the weekly history of finished courses (where `as_of` is
served) and freeze their training rows -> retrain when there is new training data ->
refresh and predict every running course. Each step is a Dagster job run, so the
Dagster UI on the same instance shows every materialization and check afterwards.
A course that fails is reported and the cycle goes on with the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.storage import schema


@dataclass
class CycleReport:
    finished_courses: list[str] = field(default_factory=list)
    running_courses: list[str] = field(default_factory=list)
    history_rebuilt: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    retrained: bool = False
    failures: dict[str, str] = field(default_factory=dict)


class Progress:
    """Prints each step with the time since the cycle started."""

    def __init__(self, echo: Callable[[str], None] = print):
        self.started = time.monotonic()
        self.echo = echo

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {message}")


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: what went wrong, not where."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1][:300]


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            return root_cause(event.step_failure_data.error)
    return "run failed"


def _run(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, partition_key: str | None = None) -> tuple[bool, str]:
    result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=False)
    return result.success, "" if result.success else _failure_message(result)


def _courses(engine: sa.Engine) -> list[CourseCalendar]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(schema.courses.c.course_id, schema.courses.c.start, schema.courses.c.end)).all()
    return [CourseCalendar(course_id, start, end) for course_id, start, end in sorted(rows)]


def _frozen_courses(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(sa.select(schema.training_data.c.course_id).distinct()).scalars())


def _needs_retraining(engine: sa.Engine) -> bool:
    """No default model yet, or training rows frozen after it was trained."""
    with engine.connect() as connection:
        trained = connection.execute(
            sa.select(sa.func.min(schema.model_registry.c.trained_at)).where(schema.model_registry.c.is_default.is_(True))
        ).scalar()
        newest_row = connection.execute(sa.select(sa.func.max(schema.training_data.c.created_at))).scalar()
    return newest_row is not None and (trained is None or newest_row > trained)


def run_cycle(defs: dg.Definitions, instance: dg.DagsterInstance, engine: sa.Engine, today: date, progress: Progress) -> CycleReport:
    report = CycleReport()
    progress("discovering courses (GET /courses/)")
    ok, message = _run(defs, instance, "discover_courses")
    if not ok:
        raise RuntimeError(f"course discovery failed: {message}")
    courses = _courses(engine)
    report.finished_courses = [c.course_id for c in courses if c.is_finished(today)]
    report.running_courses = [c.course_id for c in courses if not c.is_finished(today) and c.start_date <= today]
    progress(f"{len(courses)} courses: {len(report.finished_courses)} finished, {len(report.running_courses)} running")

    frozen = _frozen_courses(engine)
    pending = [c for c in report.finished_courses if c not in frozen]
    report.history_rebuilt = _run_per_course(
        defs, instance, "course_history", pending, report, progress, "history", "replaying every week of {} and freezing its training rows"
    )

    if _needs_retraining(engine):
        progress("training the fail-risk and dropout-risk models on held-out courses")
        ok, message = _run(defs, instance, "nightly_retrain")
        report.retrained = ok
        if not ok:
            report.failures["nightly_retrain"] = message
            progress(f"  failed: {message}")
    else:
        progress("no new training data since the default model was trained: keeping it")

    report.predicted = _run_per_course(
        defs, instance, "course_refresh", report.running_courses, report, progress, "predicting", "{} (ingest, features, predictions)"
    )
    return report


def _run_per_course(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, course_ids: list[str], report: CycleReport,
    progress: Progress, step: str, what: str,
) -> list[str]:
    """Run a partitioned job for each course; failures are recorded and the others go on."""
    succeeded = []
    for number, course_id in enumerate(course_ids, start=1):
        progress(f"{step} {number}/{len(course_ids)}: {what.format(course_id)}")
        ok, message = _run(defs, instance, job, course_id)
        if ok:
            succeeded.append(course_id)
        else:
            report.failures[course_id] = message
            progress(f"  failed: {message}")
    return succeeded
