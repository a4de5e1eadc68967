"""A course's calendar: local dates, week numbers, the snapshot dates of a replay, semester.

Course times are stored as naive UTC; the platform's own dates are recovered by
rounding (a start is a local midnight, an end a local 23:59:59), which is exact for
any platform within twelve hours of UTC and needs no time-zone setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

HALF_DAY = timedelta(hours=12)
# The days of each course week (1 = its first day) replayed for training. Predictions run
# on any day of the week, so a model must learn from early-, mid- and end-of-week moments
# alike: trained on ends of weeks only, it takes a learner on day 1 of week k, who has had
# no time for week k's work, for one who skipped it.
SNAPSHOT_DAYS_OF_WEEK = (1, 4, 7)


def scored_day(today: date) -> date:
    """The snapshot date a refresh on `today` scores: yesterday, the last local day that has
    ended. A row always describes the end of its snapshot date, in serving as in training
    (the replay asks `as_of` that date once it is long over), so a refresh at 06:00 asks the
    platform `as_of` yesterday and labels its rows yesterday, never today's first hours
    under today's date (docs/feature_dictionary.md: one moment per row)."""
    return today - timedelta(days=1)


def day_of_course_week(course_day):
    """1 to 7: where a day of the course (1 = its first, as `course_day` counts) falls in its
    course week; works on a number, a NumPy array or a pandas Series alike."""
    return (course_day - 1) % 7 + 1


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

    def first_refresh_day(self) -> date:
        """The first day a refresh has something to score: the day after the start, once the
        course's first day has ended (scored_day)."""
        return self.start_date + timedelta(days=1)

    def week_of(self, day: date) -> int:
        """1 for the course's first seven days, 2 for the next seven, and so on."""
        return (day - self.start_date).days // 7 + 1

    def snapshot_dates(self, until: date) -> list[date]:
        """Days 1, 4 and 7 (SNAPSHOT_DAYS_OF_WEEK) of every course week up to `until`, before the end."""
        last = min(until, self.end_date - timedelta(days=1)) if self.end_date else until
        dates, week_start = [], self.start_date
        while week_start <= last:
            dates += [day for d in SNAPSHOT_DAYS_OF_WEEK if (day := week_start + timedelta(days=d - 1)) <= last]
            week_start += timedelta(days=7)
        return dates

    @property
    def semester(self) -> str:
        """The run part of the course key (`course-v1:ORG+CODE+2025_S2` -> `2025_S2`) when it
        names a year; otherwise the half-year of the start (`2025_S1`/`2025_S2`)."""
        run = self.course_id.rsplit("+", 1)[-1]
        if re.match(r"^(19|20)\d\d", run):
            return run
        return f"{self.start_date.year}_S{1 if self.start_date.month < 7 else 2}"
