"""A per-process cache of what a course's prediction runs settle (a risk list's counts and
worklist, a course's statistics), valid until the course's runs, enrolments or mapping change."""

from __future__ import annotations

import threading
from collections import OrderedDict

import sqlalchemy as sa

from dropout_pipeline.storage import schema

p, e = schema.predictions, schema.enrollments


class RunCache:
    """What a course's prediction runs settle, kept per process until they change: its
    statistics, the counts per level, the worklist. The key is read on every request (two
    index look-ups): the newest prediction time, the learners enrolled and the mapping's
    last change, so a new run, a new enrolment or a new worklist share is seen at once."""

    def __init__(self, size: int = 512):
        self.size, self._lock, self._entries = size, threading.Lock(), OrderedDict()

    @staticmethod
    def marker(connection: sa.Connection, course_id: str) -> tuple:
        m = schema.course_model_mapping
        return tuple(connection.execute(sa.select(
            sa.select(sa.func.max(p.c.predicted_at)).where(p.c.course_id == course_id).scalar_subquery(),
            sa.select(sa.func.count()).select_from(e).where(e.c.course_id == course_id).scalar_subquery(),
            sa.select(sa.func.max(m.c.updated_at)).where(m.c.course_id == course_id).scalar_subquery(),
        )).one())

    def get(self, connection: sa.Connection, kind: str, course_id: str, compute):
        key = (kind, course_id, self.marker(connection, course_id))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


NO_CACHE = None
