"""Pull a course's data from the APIs into table rows, all in memory.

Nothing here writes: callers store a pull only once it has fully succeeded, so a
failed or malformed pull leaves the previous data intact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from dropout_pipeline.ingestion import rows
from dropout_pipeline.source_api.client import CallStats, ClientSettings, SourceApiClient, run_sync
from dropout_pipeline.source_api.errors import NotFoundError
from dropout_pipeline.source_api.records import Course

# Learners leave courses; a pull accepts 404s from up to this share of them. Beyond it the
# course itself is the problem (removed, or the wrong platform), not a few unenrolments.
MAX_NOT_FOUND_SHARE = 0.5


@dataclass
class Pull:
    tables: dict[str, list[dict]]
    stats: CallStats
    unknown_course: list[str] = field(default_factory=list)  # tables whose endpoint answered 404 for the course (pull_course)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def pull_catalog(settings: ClientSettings, as_of: date | None = None) -> tuple[list[Course], CallStats]:
    return run_sync(lambda api: api.courses(), settings, as_of)


def find_course(courses: Sequence[Course], course_id: str) -> Course:
    for course in courses:
        if course.course_id == course_id:
            return course
    raise NotFoundError("MOOC", "/courses/", f"course {course_id!r} is not in the platform's course list")


def pull_mooc_table(settings: ClientSettings, table: str, course_id: str, as_of: date | None = None) -> Pull:
    kind, build = rows.MOOC_TABLE_ROWS[table]
    records, stats = run_sync(lambda api: api.mooc_list(kind, course_id), settings, as_of)
    return Pull({table: build(course_id, records, _now())}, stats)


def _refuse_mass_not_found(stats: CallStats, course_id: str, asked: int) -> None:
    if len(stats.not_found) > MAX_NOT_FOUND_SHARE * asked:
        raise NotFoundError(
            "H5P", "per-learner endpoints",
            f"{len(stats.not_found)} of {asked} enrolled learners of {course_id} answered 404: "
            "more than unenrolments explain; is the course still on the platform?",
        )


def pull_h5p_tables(
    settings: ClientSettings, tables: Sequence[str], course_id: str, user_ids: Sequence[int], as_of: date | None = None
) -> Pull:
    """Tables fed by one H5P endpoint (e.g. h5p_scores and its summary) from one round of calls."""
    kinds = {rows.H5P_TABLE_ROWS[t][0] for t in tables}
    if len(kinds) != 1:
        raise ValueError(f"tables {tables} are fed by different H5P endpoints")
    kind = kinds.pop()
    responses, stats = run_sync(lambda api: api.h5p_per_learner(kind, course_id, user_ids), settings, as_of)
    _refuse_mass_not_found(stats, course_id, len(user_ids))
    fetched_at = _now()
    return Pull({t: rows.H5P_TABLE_ROWS[t][1](course_id, responses, fetched_at) for t in tables}, stats)


async def _pull_course(api: SourceApiClient, course_id: str, unknown: list[str] | None) -> dict[str, list[dict]]:
    """The same endpoints, one by one, as the ingestion assets call: a replayed snapshot is
    built from exactly what a live refresh would have read that day. With `unknown` (a list),
    a MOOC list that answers 404 for the course counts as empty and its table is added to it."""

    async def listed(table: str) -> list:
        try:
            return await api.mooc_list(rows.MOOC_TABLE_ROWS[table][0], course_id)
        except NotFoundError:
            if unknown is None:
                raise
            unknown.append(table)
            return []

    mooc_tables = list(rows.MOOC_TABLE_ROWS)
    answers = await asyncio.gather(*(listed(t) for t in mooc_tables))
    fetched_at = _now()
    tables = {t: rows.MOOC_TABLE_ROWS[t][1](course_id, records, fetched_at) for t, records in zip(mooc_tables, answers, strict=True)}
    user_ids = [row["user_id"] for row in tables["enrollments"]]
    kinds = sorted({kind for kind, _build in rows.H5P_TABLE_ROWS.values()})
    responses = dict(zip(kinds, await asyncio.gather(*(api.h5p_per_learner(kind, course_id, user_ids) for kind in kinds)), strict=True))
    _refuse_mass_not_found(api.stats, course_id, len(user_ids))
    for table, (kind, build) in rows.H5P_TABLE_ROWS.items():
        tables[table] = build(course_id, responses[kind], fetched_at)
    return tables


def pull_course(settings: ClientSettings, course_id: str, as_of: date | None = None, unknown_course_is_empty: bool = False) -> Pull:
    """Every raw table of one course as it was at the end of `as_of` (replays use this).

    `unknown_course_is_empty`: a course list answered 404 (a course the platform did not
    know as of that day) is taken as empty, and named in `Pull.unknown_course`, instead of
    failing the pull.
    """
    unknown: list[str] | None = [] if unknown_course_is_empty else None
    tables, stats = run_sync(lambda api: _pull_course(api, course_id, unknown), settings, as_of)
    return Pull(tables, stats, sorted(unknown or []))
