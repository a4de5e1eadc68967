"""A per-process cache of course rows, the first read of nearly every request (the scope
check needs the course's organisation, the calendar its dates)."""

from __future__ import annotations

import sqlalchemy as sa

from dropout_pipeline.web import queries
from dropout_pipeline.web.expiring_cache import ExpiringCache

COURSE_ROW_SECONDS = 30.0
"""How long a course row is reused. A course's key and organisation (what the scope check
reads) never change; its dates and name change when the platform edits them, and a page may
show the old ones for this long. A course not found is never kept: a new course is seen at once."""


class CourseCache:
    def __init__(self, seconds: float = COURSE_ROW_SECONDS):
        self._rows: ExpiringCache[dict] = ExpiringCache(seconds)

    def course(self, connection: sa.Connection, course_id: str) -> dict | None:
        """The course's row, a copy the caller may change."""
        found = self._rows.get(course_id, lambda: queries.course_row(connection, course_id))
        return dict(found) if found is not None else None
