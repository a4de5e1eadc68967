"""A course's calendar: local dates, week numbers, weekly snapshot dates, semester.

Course times are stored as naive UTC; the platform's own dates are recovered by
rounding (a start is a local midnight, an end a local 23:59:59), which is exact for
any platform within twelve hours of UTC and needs no time-zone setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

HALF_DAY = timedelta(hours=12)


@dataclass(frozen=True)
class CourseCalendar:
    course_id: str
    start: datetime
    end: datetime | None

    @property
    def start_date(self) -> date:
        return (self.start + HALF_DAY).date()

    @property
    def end_date(self) -> date | None:
        return (self.end - HALF_DAY).date() if self.end is not None else None

    def is_finished(self, today: date) -> bool:
        return self.end_date is not None and self.end_date < today

    def week_of(self, day: date) -> int:
        """1 for the course's first seven days, 2 for the next seven, and so on."""
        return (day - self.start_date).days // 7 + 1

    def weekly_snapshot_dates(self, until: date) -> list[date]:
        """The last day of every course week that ended on or before `until`, before the end."""
        dates = []
        day = self.start_date + timedelta(days=6)
        last = min(until, self.end_date) if self.end_date else until
        while day <= last and (self.end_date is None or day < self.end_date):
            dates.append(day)
            day += timedelta(days=7)
        return dates

    @property
    def semester(self) -> str:
        """The run part of the course key (`course-v1:ORG+CODE+2025_S2` -> `2025_S2`) when it
        names a year; otherwise the half-year of the start (`2025_S1`/`2025_S2`)."""
        run = self.course_id.rsplit("+", 1)[-1]
        if re.match(r"^(19|20)\d\d", run):
            return run
        return f"{self.start_date.year}_S{1 if self.start_date.month < 7 else 2}"
