"""What each course needs today, and which runs do it: the one decision behind both ways
of running the product.

The daemon's sensor and schedules and `dropout-pipeline run` all hand `plan_day` what
is known (the catalogue, the database, the runs already tried today) and launch the
runs it returns for their trigger, so the CLI does "what the daemon would do today".

A day's work:
- register: a course new to the catalogue (or whose dates changed) is stored and
  becomes a partition, upcoming ones included;
- freeze: a finished course not frozen at its current end is replayed week by week and its
  rows frozen, once the grace period for late grades after its end has passed (a failed
  attempt is tried again the next day). Every freeze is recorded (course_freezes) with
  what came of it, rows or nothing to learn from, so each course leaves the plan; a course
  whose end moved after its freeze runs again and is frozen again from its new end;
- retrain: when some target's newest model did not learn from every learnable row, or
  never trained (a target whose last attempt could not train waits for new rows);
- refresh: every running course due today (course_model_mapping: auto_predict on,
  daily, or weekly on Mondays) is pulled, its features rebuilt and its learners scored.

Who launches what, in the order of the daemon's day (DAEMON_DAY):
- the lifecycle sensor, every minute: registers, freezes, trains the very first models
  of an installation once nothing is left to freeze, and, from 06:00, refreshes every
  course due (after the night's model; a course that appears later in the day gets its
  first predictions at the next tick: the new-course latency);
- the 02:00 schedule: retrain (after the night's freezes, before the refreshes).
The two never launch the same step, so no step runs twice at once. A sensor tick that
fails (the platform down at 06:00) is simply tried again at the next one.
`dropout-pipeline run` goes through DAEMON_DAY at once, planning again before each
batch, so a day of `run` and a day of the daemon leave the same database.

Run keys carry the day, so the daemon tries each step at most once a day; a run of the
same step still queued or running from an earlier day is waited for, not launched again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum, IntEnum, StrEnum

from dropout_pipeline.features.calendar import CourseCalendar, scored_day

REGISTER_JOB, FREEZE_JOB, RETRAIN_JOB, REFRESH_JOB = "discover_courses", "course_history", "nightly_retrain", "course_refresh"
RETRAIN_HOUR, REFRESH_HOUR = 2, 6  # local time (DROPOUT_TIMEZONE)
MONDAY = 0


class CourseState(StrEnum):
    UPCOMING = "upcoming"
    RUNNING = "running"
    FINISHED = "finished"


class Phase(IntEnum):
    REGISTER = 1
    FREEZE = 2
    RETRAIN = 3
    REFRESH = 4

    @property
    def job_name(self) -> str:
        return {Phase.REGISTER: REGISTER_JOB, Phase.FREEZE: FREEZE_JOB, Phase.RETRAIN: RETRAIN_JOB, Phase.REFRESH: REFRESH_JOB}[self]


class Trigger(Enum):
    SENSOR = "sensor"
    NIGHTLY = "nightly"


# The daemon's day: who acts, from what time.
DAEMON_DAY = (
    (Trigger.SENSOR, time(0)),
    (Trigger.NIGHTLY, time(RETRAIN_HOUR)),
    (Trigger.SENSOR, time(REFRESH_HOUR)),
)


class Outcome(StrEnum):
    """What became of a run tried today."""

    IN_FLIGHT = "in flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def state_of(calendar: CourseCalendar, day: date) -> CourseState:
    if day < calendar.start_date:
        return CourseState.UPCOMING
    return CourseState.FINISHED if calendar.is_finished(day) else CourseState.RUNNING


@dataclass(frozen=True)
class FreezeFacts:
    """The course's latest freeze (course_freezes)."""

    course_end: datetime | None
    outcome: str  # FROZEN or NOTHING_TO_LEARN
    training_rows: int
    reason: str | None = None

    def describe(self) -> str:
        if self.outcome == FROZEN:
            return f"frozen: {self.training_rows} training rows"
        return f"frozen with nothing to learn from: {self.reason}"


FROZEN, NOTHING_TO_LEARN = "frozen", "nothing to learn"


@dataclass(frozen=True)
class CourseFacts:
    """What is known of one course in the catalogue."""

    calendar: CourseCalendar
    enrollment_count: int | None
    has_partition: bool = False
    stored: bool = False  # stored in `courses` with these dates
    frozen_rows: int = 0
    last_freeze: FreezeFacts | None = None
    listed: bool = True  # in the platform's catalogue now (False: only stored)
    last_predicted: date | None = None  # the day its latest predictions describe
    auto_predict: bool = True
    frequency: str = "daily"
    model: str | None = None  # the fail-risk model that would score it ("name vN")

    @property
    def course_id(self) -> str:
        return self.calendar.course_id

    @property
    def registered(self) -> bool:
        return self.has_partition and self.stored


@dataclass(frozen=True)
class TargetFacts:
    """One nightly target and what its newest model (or its last attempt) saw."""

    model_name: str
    model: str | None = None  # its newest version ("name vN"); None: never registered
    unseen_rows: int = 0  # learnable rows that version, or a later attempt that gave no model, did not see
    cannot_train: str | None = None  # why its last attempt gave no model, when that came after its newest version

    @property
    def never_tried(self) -> bool:
        return self.model is None and self.cannot_train is None


@dataclass(frozen=True)
class TrainingFacts:
    frozen_rows: int = 0  # learnable training rows
    targets: tuple[TargetFacts, ...] = ()


@dataclass(frozen=True)
class PlannedRun:
    phase: Phase
    run_key: str
    reason: str
    partition_key: str | None = None
    first_model: bool = False  # some target has no model at all, and no freeze is pending

    @property
    def job_name(self) -> str:
        return self.phase.job_name


@dataclass(frozen=True)
class CourseStep:
    """A course's state today and what it gets (or why nothing)."""

    course_id: str
    state: CourseState
    action: str  # "freeze", "refresh", "wait", or "none"
    reason: str


@dataclass(frozen=True)
class Plan:
    day: date
    courses: tuple[CourseStep, ...]
    runs: tuple[PlannedRun, ...]
    retrain_reason: str
    new_partitions: tuple[str, ...]

    def in_phase(self, phase: Phase) -> list[PlannedRun]:
        return [run for run in self.runs if run.phase is phase]

    def runs_for(self, trigger: Trigger, at: time) -> list[PlannedRun]:
        """The runs this trigger launches at this local time (see the module docstring). The
        triggers' shares are disjoint: no step is ever launched by both."""
        if trigger is Trigger.NIGHTLY:
            return [run for run in self.in_phase(Phase.RETRAIN) if not run.first_model]
        return [
            run for run in self.runs
            if run.phase in (Phase.REGISTER, Phase.FREEZE) or run.first_model or (run.phase is Phase.REFRESH and at.hour >= REFRESH_HOUR)
        ]

    def count(self, state: CourseState) -> int:
        return sum(step.state is state for step in self.courses)


def run_key(phase: Phase, day: date, subject: str = "") -> str:
    return f"{phase.name.lower()}-{day.isoformat()}" + (f"-{subject}" if subject else "")


def in_flight_key(phase: Phase, subject: str = "") -> str:
    """How a run still queued or running is known whatever day it was planned for."""
    return f"{phase.name.lower()}-in-flight" + (f"-{subject}" if subject else "")


def _unless_tried(step: CourseStep, run: PlannedRun, attempts: Mapping[str, Outcome]) -> tuple[CourseStep, PlannedRun | None]:
    """The step and its run, unless the run was already tried today (running, or done), or a
    run of the same step from an earlier day is still queued or running."""
    verb = run.phase.name.lower()
    if attempts.get(in_flight_key(run.phase, run.partition_key or "")) is Outcome.IN_FLIGHT and run.run_key not in attempts:
        return CourseStep(step.course_id, step.state, verb, f"{verb} of an earlier day still queued or running"), None
    outcome = attempts.get(run.run_key)
    if outcome is None:
        return step, run
    if outcome is Outcome.IN_FLIGHT:
        return CourseStep(step.course_id, step.state, verb, f"{verb} running now"), None
    what = "done today" if outcome is Outcome.SUCCEEDED else "failed today: the daemon tries again tomorrow, `dropout-pipeline run` now"
    return CourseStep(step.course_id, step.state, "none", f"{verb} {what}"), None


def _plan_finished(course: CourseFacts, day: date, grace_days: int, step) -> CourseStep:
    """A finished course: frozen (or found to have nothing to learn from) at its current end
    leaves the plan; otherwise it is frozen once late grades had `grace_days` to arrive."""
    calendar, freeze = course.calendar, course.last_freeze
    if freeze is not None and freeze.course_end == calendar.end:
        return step("none", freeze.describe())
    if freeze is None and course.enrollment_count == 0:
        return step("none", "finished with no learners: nothing to freeze")
    ready_on = calendar.end_date + timedelta(days=grace_days)
    if day < ready_on:
        return step("wait", f"finished on {calendar.end_date}: frozen on {ready_on}, once late grades are in")
    if freeze is not None:
        return step("freeze", f"its end moved from {freeze.course_end:%Y-%m-%d} to {calendar.end_date} after its freeze: frozen again from its new end")
    if not course.listed:
        return step("freeze", f"finished on {calendar.end_date} and left the catalogue: freeze what the platform still serves of it")
    return step("freeze", f"finished on {calendar.end_date}: replay its weeks and freeze its training rows")


def _plan_course(course: CourseFacts, day: date, attempts: Mapping[str, Outcome], grace_days: int = 0) -> tuple[CourseStep, PlannedRun | None]:
    calendar, state = course.calendar, state_of(course.calendar, day)

    def step(action: str, reason: str) -> CourseStep:
        return CourseStep(course.course_id, state, action, reason)

    if state is CourseState.UPCOMING:
        return step("wait", f"starts on {calendar.start_date}" + ("" if course.listed else "; it left the catalogue")), None
    if state is CourseState.FINISHED:
        wanted = _plan_finished(course, day, grace_days, step)
        if wanted.action != "freeze":
            return wanted, None
        return _unless_tried(wanted, PlannedRun(Phase.FREEZE, run_key(Phase.FREEZE, day, course.course_id), wanted.reason, course.course_id), attempts)
    if not course.listed:
        return step("none", "left the catalogue while running: not refreshed; frozen once it has ended"), None
    if not course.auto_predict:
        return step("none", "auto-predict is off for it (course_model_mapping)"), None
    scores = scored_day(day)  # a refresh today scores the end of yesterday (one moment per row)
    if day < calendar.first_refresh_day():
        return step("wait", f"first predictions on {calendar.first_refresh_day()}, once its first day has ended"), None
    if course.last_predicted == scores:
        return step("none", "predicted today"), None
    if course.frequency == "weekly" and course.last_predicted and day.weekday() != MONDAY and (scores - course.last_predicted).days < 7:
        return step("none", f"predicted weekly: last on {course.last_predicted}, next on Monday"), None
    if course.model is None:
        return step("wait", "no fail-risk model yet: predicted once the first model is trained"), None
    reopened = f"; re-opened: its end moved to {calendar.end_date} after its freeze" if course.last_freeze else ""
    wanted = step("refresh", f"{'first predictions' if course.last_predicted is None else 'refresh'} with {course.model}{reopened}")
    planned = PlannedRun(Phase.REFRESH, run_key(Phase.REFRESH, day, course.course_id), wanted.reason, course.course_id)
    return _unless_tried(wanted, planned, attempts)


def _waiting_reason(training: TrainingFacts) -> str:
    refused = [f"{t.model_name} could not train on them ({t.cannot_train}): tried again once more rows are frozen" for t in training.targets if t.cannot_train]
    return "; ".join([f"no training rows frozen since the models were last trained ({training.frozen_rows} learnable rows)", *refused])


def _due_reason(due: list[TargetFacts]) -> str:
    return "; ".join(
        f"{t.model_name} has no model yet: {t.unseen_rows} training rows" if t.never_tried
        else f"{t.unseen_rows} training rows frozen since {t.model or f'{t.model_name} last tried'}"
        for t in due
    )


def _plan_retrain(training: TrainingFacts, freezes_pending: int, day: date, attempts: Mapping[str, Outcome]) -> tuple[str, PlannedRun | None]:
    if not training.frozen_rows:
        return "no training data yet: no finished course has been frozen", None
    due = [target for target in training.targets if target.unseen_rows > 0]
    if not due:
        return _waiting_reason(training), None
    key = run_key(Phase.RETRAIN, day)
    outcome = attempts.get(key)
    if outcome is not None:
        return f"retraining {'running now' if outcome is Outcome.IN_FLIGHT else f'{outcome} today'}", None
    if attempts.get(in_flight_key(Phase.RETRAIN)) is Outcome.IN_FLIGHT:
        return "retraining of an earlier day still queued or running", None
    reason = _due_reason(due)
    first_model = any(target.never_tried for target in training.targets) and freezes_pending == 0
    return reason, PlannedRun(Phase.RETRAIN, key, reason, first_model=first_model)


def _register_run(courses: Sequence[CourseFacts], day: date, attempts: Mapping[str, Outcome]) -> PlannedRun | None:
    changed = sorted(c.course_id for c in courses if not c.registered)
    if not changed:
        return None
    digest = hashlib.sha256("|".join(changed).encode()).hexdigest()[:12]
    key = run_key(Phase.REGISTER, day, digest)
    if key in attempts:
        return None
    return PlannedRun(Phase.REGISTER, key, f"{len(changed)} course{'s' if len(changed) != 1 else ''} new or changed in the catalogue")


def plan_day(
    courses: Sequence[CourseFacts], training: TrainingFacts, day: date, attempts: Mapping[str, Outcome], grace_days: int = 0
) -> Plan:
    """Today's plan. Pure: everything it knows comes in through its arguments; `grace_days`
    is how long after its end a course waits for late grades before its labels are frozen."""
    steps, runs = [], []
    for course in sorted(courses, key=lambda c: c.course_id):
        step, run = _plan_course(course, day, attempts, grace_days)
        steps.append(step)
        if run is not None:
            runs.append(run)
    register = _register_run(courses, day, attempts)
    freezes_pending = sum(1 for step in steps if step.action == "freeze")
    retrain_reason, retrain = _plan_retrain(training, freezes_pending, day, attempts)
    planned = ([register] if register else []) + runs + ([retrain] if retrain else [])
    return Plan(
        day=day,
        courses=tuple(steps),
        runs=tuple(sorted(planned, key=lambda run: run.phase)),
        retrain_reason=retrain_reason,
        new_partitions=tuple(sorted(c.course_id for c in courses if not c.has_partition)),
    )
