"""Pull a course's data from the APIs into table rows, all in memory.

Nothing here writes: callers store a pull only once it has fully succeeded, so a
failed or malformed pull leaves the previous data intact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from dropout_pipeline.ingestion import rows
from dropout_pipeline.source_api.client import CallStats, ClientSettings, SourceApiClient, run_sync
from dropout_pipeline.source_api.errors import NotFoundError
from dropout_pipeline.source_api.records import Course


@dataclass
class Pull:
    tables: dict[str, list[dict]]
    stats: CallStats


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def pull_catalog(settings: ClientSettings) -> tuple[list[Course], CallStats]:
    return run_sync(lambda api: api.courses(), settings)


def find_course(courses: Sequence[Course], course_id: str) -> Course:
    for course in courses:
        if course.course_id == course_id:
            return course
    raise NotFoundError("MOOC", "/courses/", f"course {course_id!r} is not in the platform's course list")


def pull_mooc_table(settings: ClientSettings, table: str, course_id: str, as_of: date | None = None) -> Pull:
    kind, build = rows.MOOC_TABLE_ROWS[table]
    records, stats = run_sync(lambda api: api.mooc_list(kind, course_id), settings, as_of)
    return Pull({table: build(course_id, records, _now())}, stats)


def pull_h5p_tables(
    settings: ClientSettings, tables: Sequence[str], course_id: str, user_ids: Sequence[int], as_of: date | None = None
) -> Pull:
    """Tables fed by one H5P endpoint (e.g. h5p_scores and its summary) from one round of calls."""
    kinds = {rows.H5P_TABLE_ROWS[t][0] for t in tables}
    if len(kinds) != 1:
        raise ValueError(f"tables {tables} are fed by different H5P endpoints")
    kind = kinds.pop()
    responses, stats = run_sync(lambda api: api.h5p_per_learner(kind, course_id, user_ids), settings, as_of)
    fetched_at = _now()
    return Pull({t: rows.H5P_TABLE_ROWS[t][1](course_id, responses, fetched_at) for t in tables}, stats)


async def _pull_course(api: SourceApiClient, course_id: str) -> dict[str, list[dict]]:
    learners = await api.mooc_list("complete", course_id)
    fetched_at = _now()
    user_ids = [learner.user_id for learner in learners]
    scores, videos, dashboards = await asyncio.gather(
        api.h5p_per_learner("scores", course_id, user_ids),
        api.h5p_per_learner("videos", course_id, user_ids),
        api.h5p_per_learner("dashboard", course_id, user_ids),
    )
    parts = {
        "enrollments": [x.enrollment for x in learners],
        "mooc_grades": [x.grade for x in learners if x.grade is not None],
        "mooc_progress": [x.progress for x in learners if x.progress is not None],
        "mooc_discussions": [x.discussion for x in learners if x.discussion is not None],
    }
    tables = {table: rows.MOOC_TABLE_ROWS[table][1](course_id, parts[table], fetched_at) for table in parts}
    responses = {"scores": scores, "videos": videos, "dashboard": dashboards}
    for table, (kind, build) in rows.H5P_TABLE_ROWS.items():
        tables[table] = build(course_id, responses[kind], fetched_at)
    return tables


def pull_course(settings: ClientSettings, course_id: str, as_of: date | None = None) -> Pull:
    """Every raw table of one course as it was at the end of `as_of` (replays use this)."""
    tables, stats = run_sync(lambda api: _pull_course(api, course_id), settings, as_of)
    return Pull(tables, stats)
