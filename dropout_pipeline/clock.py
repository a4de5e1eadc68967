"""The product's clock: what "today" and "now" are, in the platform's time zone.

One clock for the planner, the pulls, the features and the labels, so they agree on
the date. It runs on real time in production; tests, replays and fast-forwarded
semesters pin it to a date (`DROPOUT_TODAY`), and then every pull asks the platform
for its state `as_of` that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    timezone: str
    pinned: date | None = None

    def now(self, at: datetime | None = None) -> datetime:
        """The local time (aware): `at` (a schedule's tick) or the real time; when pinned,
        the pinned date at that time of day."""
        zone = ZoneInfo(self.timezone)
        moment = (at or datetime.now(zone)).astimezone(zone)
        return datetime.combine(self.pinned, moment.timetz()) if self.pinned else moment

    def today(self) -> date:
        return self.pinned or self.now().date()
