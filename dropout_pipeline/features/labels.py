"""Final outcomes of a finished course, and the labelled training rows built from them.

Labels come from the course's end: inactivity as of its end date, and the verdict and the
grade as of the last day of the grace period after it (grades_read_on), so work graded
late (staff- and peer-graded problems, regrades) reaches them; features from the snapshots
strictly before the end (days 1, 4 and 7 of every course week: calendar.SNAPSHOT_DAYS_OF_WEEK),
so a row never contains what it is asked to predict.
- is_passed: the platform's final verdict (`mooc_is_passed` on the end date).
- is_dropout: no activity in the last `inactive_days` days before the end (30 in the
  legacy system), including never having been active at all.
- final_grade: the final course grade in %.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd

from dropout_pipeline.features.calendar import HALF_DAY, CourseCalendar
from dropout_pipeline.features.dictionary import FEATURE_NAMES


def final_outcomes(final_snapshot: pd.DataFrame, inactive_days: int, graded_snapshot: pd.DataFrame | None = None) -> pd.DataFrame:
    """Outcomes from the end date's snapshot; the verdict and the grade from `graded_snapshot`
    (the end of the grace period) for every learner it holds."""
    inactive = final_snapshot["days_since_last_activity"].isna() | (final_snapshot["days_since_last_activity"] > inactive_days)
    outcomes = pd.DataFrame(
        {
            "user_id": final_snapshot["user_id"],
            "course_id": final_snapshot["course_id"],
            "is_passed": final_snapshot["mooc_is_passed"].astype(bool),
            "is_dropout": inactive.astype(bool),
            "final_grade": final_snapshot["mooc_grade_percentage"].astype(float),
        }
    )
    if graded_snapshot is None or graded_snapshot.empty:
        return outcomes
    graded = graded_snapshot.set_index("user_id")
    late = outcomes["user_id"].isin(graded.index)
    outcomes.loc[late, "is_passed"] = graded.loc[outcomes.loc[late, "user_id"], "mooc_is_passed"].astype(bool).to_numpy()
    outcomes.loc[late, "final_grade"] = graded.loc[outcomes.loc[late, "user_id"], "mooc_grade_percentage"].astype(float).to_numpy()
    return outcomes


def grades_read_on(calendar: CourseCalendar, today: date, grace_days: int) -> date:
    """The day the labels' verdicts and grades are read as of: the last day of the grace
    period after the end, or the last day that has ended when a course is frozen sooner
    (by hand); never before the end."""
    last_grace_day = calendar.end_date + timedelta(days=max(grace_days - 1, 0))
    return max(calendar.end_date, min(last_grace_day, today - timedelta(days=1)))


def training_rows(
    history: pd.DataFrame, calendar: CourseCalendar, inactive_days: int, created_at: datetime, grades_on: date | None = None
) -> pd.DataFrame:
    """Snapshots before the end, each joined to the learner's final outcome.

    `history` holds the course's snapshots, including the one on its end date and, when
    replayed, the one on `grades_on` that the verdicts and grades are read from.
    """
    end = calendar.end_date
    if end is None:
        raise ValueError(f"{calendar.course_id} has no end date: a self-paced course never freezes training rows")
    snapshot_dates = pd.to_datetime(history["snapshot_date"]).dt.date
    final = history[snapshot_dates == end]
    if final.empty:
        raise ValueError(f"{calendar.course_id}: no snapshot on its end date {end}; replay its history first")
    graded = history[snapshot_dates == grades_on] if grades_on and grades_on > end else None
    outcomes = final_outcomes(final, inactive_days, graded)
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


def snapshot_plan(calendar: CourseCalendar, today: date, grace_days: int = 0) -> list[date]:
    """Dates to replay: days 1, 4 and 7 of each course week so far, and once finished the end
    date and the day its grades are read on (grades_read_on)."""
    dates = calendar.snapshot_dates(until=today)
    if calendar.is_finished(today):
        dates.append(calendar.end_date)
        if (graded := grades_read_on(calendar, today, grace_days)) > calendar.end_date:
            dates.append(graded)
    return dates
