"""Final outcomes of a finished course, and the labelled training rows built from them.

Labels come from the course's last snapshot (its end date); features from the snapshots
strictly before it (days 1, 4 and 7 of every course week: calendar.SNAPSHOT_DAYS_OF_WEEK),
so a row never contains what it is asked to predict.
- is_passed: the platform's final verdict (`mooc_is_passed` on the end date).
- is_dropout: no activity in the last `inactive_days` days before the end (30 in the
  legacy system), including never having been active at all.
- final_grade: the final course grade in %.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from dropout_pipeline.features.calendar import HALF_DAY, CourseCalendar
from dropout_pipeline.features.dictionary import FEATURE_NAMES


def final_outcomes(final_snapshot: pd.DataFrame, inactive_days: int) -> pd.DataFrame:
    inactive = final_snapshot["days_since_last_activity"].isna() | (final_snapshot["days_since_last_activity"] > inactive_days)
    return pd.DataFrame(
        {
            "user_id": final_snapshot["user_id"],
            "course_id": final_snapshot["course_id"],
            "is_passed": final_snapshot["mooc_is_passed"].astype(bool),
            "is_dropout": inactive.astype(bool),
            "final_grade": final_snapshot["mooc_grade_percentage"].astype(float),
        }
    )


def training_rows(history: pd.DataFrame, calendar: CourseCalendar, inactive_days: int, created_at: datetime) -> pd.DataFrame:
    """Snapshots before the end, each joined to the learner's final outcome.

    `history` holds the course's snapshots, including the one on its end date.
    """
    end = calendar.end_date
    if end is None:
        raise ValueError(f"{calendar.course_id} has no end date: a self-paced course never freezes training rows")
    snapshot_dates = pd.to_datetime(history["snapshot_date"]).dt.date
    final = history[snapshot_dates == end]
    if final.empty:
        raise ValueError(f"{calendar.course_id}: no snapshot on its end date {end}; replay its history first")
    outcomes = final_outcomes(final, inactive_days)
    before_end = history[snapshot_dates < end]
    rows = before_end[["user_id", "course_id", *FEATURE_NAMES, "snapshot_date", "snapshot_week"]].merge(
        outcomes, on=["user_id", "course_id"], how="inner", validate="many_to_one"
    )
    rows["semester"] = calendar.semester
    rows["created_at"] = created_at
    rows["snapshot_date"] = pd.to_datetime(rows["snapshot_date"]).dt.date
    return rows.reset_index(drop=True)


def training_weeks(calendar: CourseCalendar) -> list[int]:
    """The course weeks a finished course's training rows must cover: every week with a
    snapshot before the end (the end date itself only gives the labels)."""
    return sorted({calendar.week_of(day) for day in calendar.snapshot_dates(until=calendar.end_date)})


def weeks_with_learners(calendar: CourseCalendar, first_enrolment: datetime | None) -> list[int]:
    """The training weeks by whose end someone had surely enrolled: those a replay must have
    given rows for (a course nobody joined before week 3 has none for weeks 1 and 2).
    Stored times are naive UTC, and a local date is at most half a day later."""
    if first_enrolment is None:
        return training_weeks(calendar)
    surely_by = (first_enrolment + HALF_DAY).date()
    return sorted({calendar.week_of(day) for day in calendar.snapshot_dates(until=calendar.end_date) if day >= surely_by})


def snapshot_plan(calendar: CourseCalendar, today: date) -> list[date]:
    """Dates to replay: days 1, 4 and 7 of each course week so far, and the end date once finished."""
    dates = calendar.snapshot_dates(until=today)
    if calendar.is_finished(today):
        dates.append(calendar.end_date)
    return dates
