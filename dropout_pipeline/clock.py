"""The product's clock: what "today" and "now" are, in the platform's time zone.

One clock for the planner, the pulls, the features and the labels, so they agree on
the date. It runs on real time in production; tests, replays and fast-forwarded
semesters pin it (`DROPOUT_TODAY`) to a date, or to a date and a time of day, and then
every pull asks the platform for its state `as_of` that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    timezone: str
    pinned_day: date | None = None
    pinned_time: time | None = None  # with a pinned day: the time of day too

    @classmethod
    def pinned_at(cls, timezone: str, moment: str | None) -> Clock:
        """A clock pinned to `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (local), or running when None."""
        if not moment:
            return cls(timezone)
        if "T" in moment:
            pinned = datetime.fromisoformat(moment)
            return cls(timezone, pinned.date(), pinned.time())
        return cls(timezone, date.fromisoformat(moment))

    def now(self, at: datetime | None = None) -> datetime:
        """The local time (aware): `at` (a schedule's tick) or the real time, moved to the
        pinned day (and time of day) when pinned."""
        zone = ZoneInfo(self.timezone)
        moment = (at or datetime.now(zone)).astimezone(zone)
        if self.pinned_day is None:
            return moment
        return datetime.combine(self.pinned_day, self.pinned_time or moment.time(), zone)

    def today(self) -> date:
        return self.pinned_day or self.now().date()


def utc_now() -> datetime:
    """Real time in UTC, naive as the tables store it: when a row was written, a session
    opened or feedback given (the product's clock above is for what day the courses are at)."""
    return datetime.now(UTC).replace(tzinfo=None)
