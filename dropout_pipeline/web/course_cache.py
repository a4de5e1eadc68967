"""A per-process cache of course rows, the first read of nearly every request (the scope
check needs the course's organisation, the calendar its dates)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import sqlalchemy as sa

from dropout_pipeline.web import queries

COURSE_ROW_SECONDS = 30.0
"""How long a course row is reused. A course's key and organisation (what the scope check
reads) never change; its dates and name change when the platform edits them, and a page may
show the old ones for this long. A course not found is never kept: a new course is seen at once."""


class CourseCache:
    def __init__(self, seconds: float = COURSE_ROW_SECONDS, size: int = 4096):
        self.seconds, self.size, self._lock, self._entries = seconds, size, threading.Lock(), OrderedDict()

    def course(self, connection: sa.Connection, course_id: str) -> dict | None:
        now = time.monotonic()
        with self._lock:
            kept = self._entries.get(course_id)
            if kept is not None and now - kept[0] < self.seconds:
                return dict(kept[1])
        found = queries.course_row(connection, course_id)
        if found is not None:
            with self._lock:
                self._entries[course_id] = (now, found)
                self._entries.move_to_end(course_id)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return dict(found) if found is not None else None
