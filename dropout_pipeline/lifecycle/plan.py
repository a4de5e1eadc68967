"""What each course needs today, and which runs do it: the one decision behind both ways
of running the product.

The daemon's sensor and schedules and `dropout-pipeline run` all hand `plan_day` what
is known (the catalogue, the database, the runs already tried today) and launch the
runs it returns for their trigger, so the CLI does "what the daemon would do today".

A day's work:
- register: a course new to the catalogue (or whose dates changed) is stored and
  becomes a partition, upcoming ones included;
- freeze: a finished course with no training rows is replayed week by week and its
  rows frozen, within a day of its end (a failed attempt is tried again the next day);
- retrain: when rows were frozen that the newest model did not learn from;
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

Run keys carry the day, so the daemon tries each step at most once a day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import Enum, IntEnum, StrEnum

from dropout_pipeline.features.calendar import CourseCalendar

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
class CourseFacts:
    """What is known of one course in the catalogue."""

    calendar: CourseCalendar
    enrollment_count: int | None
    has_partition: bool = False
    stored: bool = False  # stored in `courses` with these dates
    frozen_rows: int = 0
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
class TrainingFacts:
    frozen_rows: int = 0
    learned_rows: int | None = None  # the fewest rows the newest model of a target learned from; None: a target has none


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


def _unless_tried(step: CourseStep, run: PlannedRun, attempts: Mapping[str, Outcome]) -> tuple[CourseStep, PlannedRun | None]:
    """The step and its run, unless the run was already tried today (running, or done)."""
    outcome = attempts.get(run.run_key)
    if outcome is None:
        return step, run
    verb = run.phase.name.lower()
    if outcome is Outcome.IN_FLIGHT:
        return CourseStep(step.course_id, step.state, verb, f"{verb} running now"), None
    what = "done today" if outcome is Outcome.SUCCEEDED else "failed today: the daemon tries again tomorrow, `dropout-pipeline run` now"
    return CourseStep(step.course_id, step.state, "none", f"{verb} {what}"), None


def _plan_course(course: CourseFacts, day: date, attempts: Mapping[str, Outcome]) -> tuple[CourseStep, PlannedRun | None]:
    calendar, state = course.calendar, state_of(course.calendar, day)

    def step(action: str, reason: str) -> CourseStep:
        return CourseStep(course.course_id, state, action, reason)

    if state is CourseState.UPCOMING:
        return step("wait", f"starts on {calendar.start_date}"), None
    if state is CourseState.FINISHED:
        if course.frozen_rows:
            return step("none", f"frozen: {course.frozen_rows} training rows"), None
        if course.enrollment_count == 0:
            return step("none", "finished with no learners: nothing to freeze"), None
        wanted = step("freeze", f"finished on {calendar.end_date}: replay its weeks and freeze its training rows")
        return _unless_tried(wanted, PlannedRun(Phase.FREEZE, run_key(Phase.FREEZE, day, course.course_id), wanted.reason, course.course_id), attempts)
    if not course.auto_predict:
        return step("none", "auto-predict is off for it (course_model_mapping)"), None
    if course.last_predicted == day:
        return step("none", "predicted today"), None
    if course.frequency == "weekly" and course.last_predicted and day.weekday() != MONDAY and (day - course.last_predicted).days < 7:
        return step("none", f"predicted weekly: last on {course.last_predicted}, next on Monday"), None
    if course.model is None:
        return step("wait", "no fail-risk model yet: predicted once the first model is trained"), None
    wanted = step("refresh", f"{'first predictions' if course.last_predicted is None else 'refresh'} with {course.model}")
    planned = PlannedRun(Phase.REFRESH, run_key(Phase.REFRESH, day, course.course_id), wanted.reason, course.course_id)
    return _unless_tried(wanted, planned, attempts)


def _plan_retrain(training: TrainingFacts, freezes_pending: int, day: date, attempts: Mapping[str, Outcome]) -> tuple[str, PlannedRun | None]:
    if not training.frozen_rows:
        return "no training data yet: no finished course has been frozen", None
    if training.learned_rows is not None and training.frozen_rows <= training.learned_rows:
        return f"no training rows frozen since the models were last trained (on {training.learned_rows} rows)", None
    key = run_key(Phase.RETRAIN, day)
    outcome = attempts.get(key)
    if outcome is not None:
        return f"retraining {'running now' if outcome is Outcome.IN_FLIGHT else f'{outcome} today'}", None
    if training.learned_rows is None:
        reason = f"a target has no model yet: {training.frozen_rows} training rows"
    else:
        reason = f"{training.frozen_rows - training.learned_rows} training rows frozen since the models were last trained"
    return reason, PlannedRun(Phase.RETRAIN, key, reason, first_model=training.learned_rows is None and freezes_pending == 0)


def _register_run(courses: Sequence[CourseFacts], day: date, attempts: Mapping[str, Outcome]) -> PlannedRun | None:
    changed = sorted(c.course_id for c in courses if not c.registered)
    if not changed:
        return None
    digest = hashlib.sha256("|".join(changed).encode()).hexdigest()[:12]
    key = run_key(Phase.REGISTER, day, digest)
    if key in attempts:
        return None
    return PlannedRun(Phase.REGISTER, key, f"{len(changed)} course{'s' if len(changed) != 1 else ''} new or changed in the catalogue")


def plan_day(courses: Sequence[CourseFacts], training: TrainingFacts, day: date, attempts: Mapping[str, Outcome]) -> Plan:
    """Today's plan. Pure: everything it knows comes in through its arguments."""
    steps, runs = [], []
    for course in sorted(courses, key=lambda c: c.course_id):
        step, run = _plan_course(course, day, attempts)
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
