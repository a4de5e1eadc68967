"""Guarding the history replay against a platform that ignores `as_of`, endpoint by endpoint.

An endpoint that ignores `as_of` answers today's state for every date asked, which
would put end-of-course grades or activity into week-1 training rows: exactly the
leakage the replay exists to avoid. A platform may honour it on some endpoints and
not others, so each endpoint is judged on its own answers:

- answers that carry times (enrolments, last activity, H5P finishes, video watching)
  may hold no time after the day asked for;
- answers that carry none (grades, discussions, the H5P dashboard) may not be the
  same for every learner at the end of the first replayed week and at the end of the
  course, when the timed answers show the course went on after that week.

Only small per-learner summaries of the first and the latest snapshot are kept, so a
replay of a large course does not hold every snapshot's rows in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from dropout_pipeline.ingestion.rows import H5P_TABLE_ROWS, MOOC_TABLE_ROWS
from dropout_pipeline.source_api.records import H5P_ENDPOINTS, MOOC_LIST_ENDPOINTS

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


def endpoint_of(table: str) -> str:
    """The endpoint a raw table is pulled from, as a person would look it up in the contract."""
    if table in MOOC_TABLE_ROWS:
        path = MOOC_LIST_ENDPOINTS[MOOC_TABLE_ROWS[table][0]][0]
        return f"MOOC API GET {path.split('{')[0]}"
    path = H5P_ENDPOINTS[H5P_TABLE_ROWS[table][0]][0]
    return f"H5P API GET {path.split('{')[0]}"


def _summary(rows: list[dict], columns: tuple[str, ...]) -> dict[int, tuple]:
    return {row["user_id"]: tuple(row[c] for c in columns) for row in rows}


def _activity(tables: Mapping[str, list[dict]]) -> int:
    """How much the timed endpoints say was done: blocks, H5P finishes, videos watched."""
    return sum(row["completed_blocks"] for row in tables["mooc_progress"]) + len(tables["h5p_scores"]) + len(tables["video_progress"])


@dataclass
class _Snapshot:
    day: date
    activity: int
    untimed: dict[str, dict[int, tuple]]


@dataclass
class AsOfGuard:
    """Watches every replayed snapshot; `problems()` names each endpoint that ignored `as_of`."""

    _timed_problems: dict[str, str] = field(default_factory=dict)
    _first: _Snapshot | None = None
    _latest: _Snapshot | None = None

    def observe(self, day: date, tables: Mapping[str, list[dict]]) -> None:
        limit = datetime.combine(day, time()) + LATEST_HOUR_UTC_OF_A_LOCAL_DAY
        for table, column in TIMED_COLUMNS.items():
            late = [row[column] for row in tables[table] if row[column] is not None and row[column] > limit]
            if late and endpoint_of(table) not in self._timed_problems:
                self._timed_problems[endpoint_of(table)] = (
                    f"asked as of {day}, it answered {len(late)} records stamped as late as {max(late):%Y-%m-%d}"
                )
        snapshot = _Snapshot(day, _activity(tables), {t: _summary(tables[t], columns) for t, columns in UNTIMED_COLUMNS.items()})
        self._first = self._first or snapshot
        self._latest = snapshot

    def problems(self) -> dict[str, str]:
        problems = dict(self._timed_problems)
        first, latest = self._first, self._latest
        if first is None or latest is None or latest.activity <= first.activity:
            return problems  # nothing happened after the first week: equal answers are honest
        for table in UNTIMED_COLUMNS:
            before, after = first.untimed[table], latest.untimed[table]
            common = before.keys() & after.keys()
            active = any(any(value for value in after[user]) for user in common)
            if common and active and all(before[user] == after[user] for user in common):
                problems[endpoint_of(table)] = (
                    f"its answers as of {first.day} and {latest.day} are identical for all {len(common)} learners, "
                    f"although {latest.activity - first.activity} more blocks, H5P scores and videos were done in between"
                )
        return problems
