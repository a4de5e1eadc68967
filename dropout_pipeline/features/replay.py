"""The weekly replay of a course, guarded against a platform that ignores `as_of`,
endpoint by endpoint.

An endpoint that ignores `as_of` answers today's state for every date asked, which
would put end-of-course grades or activity into week-1 training rows: exactly the
leakage the replay exists to avoid. A platform may honour it on some endpoints and
not others, so each endpoint is judged on its own answers:

- answers that carry times (enrolments, last activity, H5P finishes, video watching)
  may hold no time after the day asked for;
- the course-level lists without times (grades, discussions), asked as of the day
  before the course started, may hold no work by learners not enrolled that day. A
  platform that does not list a course before its start answers that day 404 (the
  contract's answer for a course it does not know yet): an answer as of that day too,
  since it knows the course now; it is taken as "nothing yet" for the endpoints that
  gave it;
- answers without times (those two and the H5P dashboard) may not be the same for
  every learner at the first snapshot with learners and at the end, when the timed
  answers show that work was done in between. Grades and discussions are compared so
  only from the day before the start (a forum whose only posts came in week 1 is
  honest); the dashboard, from week 1 too, against H5P work.

The guard keeps only per-learner summaries of two snapshots, not every snapshot's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd

from dropout_pipeline.features.build import build_features
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.ingestion.pull import pull_course
from dropout_pipeline.ingestion.rows import H5P_TABLE_ROWS, MOOC_TABLE_ROWS
from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.source_api.records import H5P_ENDPOINTS, MOOC_LIST_ENDPOINTS
from dropout_pipeline.storage.raw_tables import tables_as_frames

# The times a platform within twelve hours of UTC stamps on the day asked for all fall
# before noon UTC of the next day (rows hold naive UTC).
LATEST_HOUR_UTC_OF_A_LOCAL_DAY = timedelta(days=1, hours=12)

TIMED_COLUMNS = {
    "enrollments": "created",
    "mooc_progress": "last_activity",
    "h5p_scores": "finished_at",
    "video_progress": "last_watched_at",
}
UNTIMED_COLUMNS = {
    "mooc_grades": ("percent_grade", "sections_attempted"),
    "mooc_discussions": ("total_interactions", "total_upvotes"),
    "dashboard_summary": ("completed_items", "overall_completion"),
}
LISTED_BY_COURSE = ("mooc_grades", "mooc_discussions")  # one list per course, not asked learner by learner


def endpoint_of(table: str) -> str:
    """The endpoint a raw table is pulled from, as a person would look it up in the contract."""
    if table in MOOC_TABLE_ROWS:
        path = MOOC_LIST_ENDPOINTS[MOOC_TABLE_ROWS[table][0]][0]
        return f"MOOC API GET {path.split('{')[0]}"
    path = H5P_ENDPOINTS[H5P_TABLE_ROWS[table][0]][0]
    return f"H5P API GET {path.split('{')[0]}"


def _summary(rows: list[dict], columns: tuple[str, ...]) -> dict[int, tuple]:
    return {row["user_id"]: tuple(row[c] for c in columns) for row in rows}


def _activity(tables: Mapping[str, list[dict]]) -> dict[str, int]:
    """How much work the timed endpoints say was done, as evidence for each untimed one: the
    dashboard counts H5P work only, grades and discussions any work."""
    h5p = len(tables["h5p_scores"])
    everything = sum(row["completed_blocks"] for row in tables["mooc_progress"]) + h5p + len(tables["video_progress"])
    return {"mooc_grades": everything, "mooc_discussions": everything, "dashboard_summary": h5p}


@dataclass
class _Snapshot:
    day: date
    activity: dict[str, int]
    untimed: dict[str, dict[int, tuple]]


@dataclass
class AsOfGuard:
    """Watches every replayed snapshot; `problems()` names each endpoint that ignored `as_of`."""

    course_start: date
    _found: dict[str, str] = field(default_factory=dict)
    _first: _Snapshot | None = None
    _latest: _Snapshot | None = None

    def observe(self, day: date, tables: Mapping[str, list[dict]]) -> None:
        self._check_times(day, tables)
        if day < self.course_start:
            self._check_work_before_enrolment(day, tables)
        snapshot = _Snapshot(day, _activity(tables), {t: _summary(tables[t], columns) for t, columns in UNTIMED_COLUMNS.items()})
        if self._first is None and tables["enrollments"]:  # the earliest snapshot with learners to compare
            self._first = snapshot
        self._latest = snapshot

    def _report(self, table: str, problem: str) -> None:
        self._found.setdefault(endpoint_of(table), problem)

    def _check_times(self, day: date, tables: Mapping[str, list[dict]]) -> None:
        limit = datetime.combine(day, time()) + LATEST_HOUR_UTC_OF_A_LOCAL_DAY
        for table, column in TIMED_COLUMNS.items():
            late = [row[column] for row in tables[table] if row[column] is not None and row[column] > limit]
            if late:
                self._report(table, f"asked as of {day}, it answered {len(late)} records stamped as late as {max(late):%Y-%m-%d}")

    def _check_work_before_enrolment(self, day: date, tables: Mapping[str, list[dict]]) -> None:
        enrolled = {row["user_id"] for row in tables["enrollments"]}
        for table in LISTED_BY_COURSE:
            columns = UNTIMED_COLUMNS[table]
            early = [row for row in tables[table] if row["user_id"] not in enrolled and any(row[c] for c in columns)]
            if early:
                self._report(table, f"asked as of {day}, before the course started, it answered work by {len(early)} learners not enrolled then")

    def problems(self) -> dict[str, str]:
        first, latest = self._first, self._latest
        if first is None or latest is None:
            return dict(self._found)
        for table in UNTIMED_COLUMNS:
            done_between = latest.activity[table] - first.activity[table]
            if done_between <= 0 or (table in LISTED_BY_COURSE and first.day >= self.course_start):
                continue  # nothing to show for, or a week-1 witness that an honest forum can match
            before, after = first.untimed[table], latest.untimed[table]
            common = before.keys() & after.keys()
            active = any(any(value for value in after[user]) for user in common)
            if common and active and all(before[user] == after[user] for user in common):
                self._report(table, (
                    f"its answers as of {first.day} and {latest.day} are identical for all {len(common)} learners, "
                    f"although {done_between} more pieces of work were done in between"
                ))
        return dict(self._found)


class AsOfIgnored(RuntimeError):
    """The platform ignored `as_of` on some endpoints; `endpoints` says why for each."""

    def __init__(self, endpoints: dict[str, str]):
        self.endpoints = endpoints
        super().__init__(f"the platform ignores `as_of` on {', '.join(sorted(endpoints))}")


@dataclass
class Replay:
    snapshots: list[tuple[date, pd.DataFrame]]  # (snapshot date, features as of its end)
    calls: int
    retries: int


def replay_course(
    settings: ClientSettings, course: dict, calendar: CourseCalendar, dates: list[date], log: Callable[[str], None]
) -> Replay:
    """Features as of the end of each date, from the platform's state `as_of` it; raises
    AsOfIgnored (before the caller writes anything) when an endpoint ignored `as_of`."""
    guard, snapshots, calls, retries = AsOfGuard(calendar.start_date), [], 0, 0
    courses = pd.DataFrame([course])
    before_start = calendar.start_date - timedelta(days=1)
    for number, day in enumerate([before_start, *dates]):
        pull = pull_course(settings, calendar.course_id, as_of=day, unknown_course_is_empty=not number)
        if pull.unknown_course:
            log(f"{calendar.course_id}: as of {day}, before its start, the platform did not know the course yet (404 from "
                f"{', '.join(endpoint_of(table) for table in pull.unknown_course)}): taken as nothing done then")
        guard.observe(day, pull.tables)
        calls, retries = calls + pull.stats.calls, retries + pull.stats.retries
        if number:
            snapshots.append((day, build_features(tables_as_frames(pull.tables), courses, day)))
            log(f"{calendar.course_id}: snapshot {number}/{len(dates)} as of {day} ({len(snapshots[-1][1])} learners, {pull.stats.calls} calls)")
    if problems := guard.problems():
        raise AsOfIgnored(problems)
    return Replay(snapshots, calls, retries)
