"""Raw tables to `student_features`: one row per enrolled learner and course.

Works on any number of courses at once (the cohort features group by course), fully
vectorised, and uses only the raw tables it is given plus the snapshot date: every
"days since" is measured to the end of the snapshot date, never to "now", so a
replayed snapshot equals the row the live pipeline scored for that day (a refresh
scores the end of yesterday: the feature dictionary's one moment per row).
Learners with no activity get zeros (counts) or nulls (undefined ratios and recency).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from dropout_pipeline.features.activity import EVENT_COLUMNS, activity_features, learner_events
from dropout_pipeline.features.calendar import HALF_DAY
from dropout_pipeline.features.dictionary import FEATURES

KEY = ["user_id", "course_id"]
DAY = np.timedelta64(1, "D")


def _days(later: pd.Series, earlier: pd.Series | datetime) -> pd.Series:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)) / DAY


def _days_ago(reference: pd.Timestamp, stamps: pd.Series) -> pd.Series:
    """Days from each stamp to the end of the snapshot date. A platform that ignores `as_of`
    also answers what happened after it (a refresh runs the morning after the day it scores):
    such a stamp counts as at the end of the day, 0 days ago, never as negative days."""
    return _days(reference, stamps).clip(lower=0)


# What the builder reads: the per-learner summaries, the timed events of the per-content
# tables (features.activity), and only these columns. Readers fetch exactly this.
SUMMARY_COLUMNS: dict[str, list[str]] = {
    "enrollments": ["mode", "is_active", "created", "fetched_at"],
    "mooc_grades": ["percent_grade", "letter_grade", "is_passed", "sections_total", "sections_attempted", "attempted_sections_avg_percent"],
    "mooc_progress": ["total_blocks", "completed_blocks", "progress_percent", "completion_rate", "last_activity"],
    "mooc_discussions": ["threads_count", "comments_count", "total_interactions", "questions_count", "total_upvotes"],
    "h5p_scores_summary": ["total_contents", "completed_contents", "overall_percentage", "avg_attempts", "last_finished_at"],
    "video_progress_summary": ["completed_videos", "in_progress_videos", "total_duration", "total_watched_time", "last_watched_at"],
    "dashboard_summary": ["overall_completion", "completed_items", "h5p_total_contents", "video_total_videos"],
}
INPUT_COLUMNS: dict[str, list[str]] = {**SUMMARY_COLUMNS, **EVENT_COLUMNS}


def _per_learner(tables: Mapping[str, pd.DataFrame], name: str, columns: list[str]) -> pd.DataFrame:
    frame = tables.get(name)
    if frame is None or frame.empty:
        return pd.DataFrame(columns=KEY + columns)
    return frame[KEY + columns]


def _percentile_in_course(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.groupby("course_id")[column].rank(pct=True, method="average") * 100


def build_features(tables: Mapping[str, pd.DataFrame], courses: pd.DataFrame, snapshot_date: date) -> pd.DataFrame:
    """Features as of the end of `snapshot_date`.

    `tables` are raw tables (as stored, any number of courses); `courses` has
    course_id, start and end (naive UTC). Returns KEY + FEATURE_NAMES + snapshot_date.
    """
    reference = pd.Timestamp(datetime.combine(snapshot_date + timedelta(days=1), datetime.min.time()))
    people = tables["enrollments"][KEY + ["mode", "is_active", "created"]]
    frame = people.merge(courses[["course_id", "start", "end"]], on="course_id", how="left", validate="many_to_one")
    if frame["start"].isna().any():
        missing = sorted(frame.loc[frame["start"].isna(), "course_id"].unique())
        raise ValueError(f"no course calendar for {missing}: materialize `enrollments` (it stores the course) first")
    for name, columns in SUMMARY_COLUMNS.items():
        if name == "enrollments":
            continue
        frame = frame.merge(_per_learner(tables, name, columns), on=KEY, how="left", validate="one_to_one")

    start_date = pd.to_datetime(frame["start"] + HALF_DAY).dt.normalize()
    end_date = pd.to_datetime(frame["end"] - HALF_DAY).dt.normalize()
    snapshot = pd.Timestamp(snapshot_date)
    duration_days = (end_date - start_date) / DAY + 1
    elapsed_days = (snapshot - start_date) / DAY + 1
    days_enrolled = _days_ago(reference, frame["created"])
    days_in_course = np.minimum(days_enrolled, _days(reference, frame["start"]).clip(lower=0))
    since_activity = _days_ago(reference, frame["last_activity"])
    zero = lambda column: frame[column].fillna(0)  # noqa: E731 - counts: no record means none
    entry = np.maximum(pd.to_datetime(frame["created"]), pd.to_datetime(frame["start"]))
    activity = activity_features(frame[KEY].assign(entry=entry, start=pd.to_datetime(frame["start"])), learner_events(tables, reference), reference)
    weeks_done = ((snapshot - start_date) / DAY + 1) // 7
    sections_due = np.floor(frame["sections_total"] * (weeks_done / (duration_days / 7)).clip(0, 1))

    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype("int64"),
            "course_id": frame["course_id"],
            "enrollment_mode": frame["mode"].fillna("unknown"),
            "is_active_enrollment": frame["is_active"].fillna(False).astype(int),
            "days_since_enrollment": days_enrolled,
            "enrolled_days_after_start": _days(frame["created"], frame["start"]),
            "course_week": ((snapshot - start_date) / DAY // 7 + 1).astype(int),
            "course_day": elapsed_days.astype(int),
            "course_elapsed_fraction": (elapsed_days / duration_days).clip(0, 1),
            "course_duration_weeks": duration_days / 7,
            "mooc_grade_percentage": zero("percent_grade") * 100,
            "mooc_letter_grade": frame["letter_grade"].fillna("none"),
            "mooc_is_passed": frame["is_passed"].fillna(False).astype(int),
            "graded_sections_total": zero("sections_total").astype(int),
            "graded_sections_attempted": zero("sections_attempted").astype(int),
            "graded_attempt_rate": (zero("sections_attempted") / frame["sections_total"].where(frame["sections_total"] > 0)).fillna(0),
            "attempted_sections_avg_percent": frame["attempted_sections_avg_percent"],
            "total_blocks": zero("total_blocks").astype(int),
            "completed_blocks": zero("completed_blocks").astype(int),
            "progress_percent": zero("progress_percent"),
            "mooc_completion_rate": zero("completion_rate"),
            "has_any_activity": frame["last_activity"].notna().astype(int),
            "days_since_last_activity": since_activity,
            "days_inactive_share": (since_activity.fillna(days_in_course) / days_in_course.where(days_in_course > 0)).clip(0, 1).fillna(1.0),
            "discussion_threads_count": zero("threads_count").astype(int),
            "discussion_comments_count": zero("comments_count").astype(int),
            "discussion_total_interactions": zero("total_interactions").astype(int),
            "discussion_questions_count": zero("questions_count").astype(int),
            "discussion_total_upvotes": zero("total_upvotes").astype(int),
            "h5p_total_contents": zero("total_contents").astype(int),
            "h5p_completed_contents": zero("completed_contents").astype(int),
            "h5p_completion_rate": (zero("completed_contents") / frame["h5p_total_contents"].where(frame["h5p_total_contents"] > 0)).fillna(0).clip(0, 1),
            "h5p_score_percentage": frame["overall_percentage"].where(zero("total_contents") > 0),
            "h5p_avg_attempts": frame["avg_attempts"],
            "h5p_days_since_last_finish": _days_ago(reference, frame["last_finished_at"]),
            "video_total_videos": zero("video_total_videos").astype(int),
            "video_completed_videos": zero("completed_videos").astype(int),
            "video_in_progress_videos": zero("in_progress_videos").astype(int),
            "video_watch_time_minutes": zero("total_watched_time") / 60,
            "video_watch_ratio": (frame["total_watched_time"] / frame["total_duration"].where(frame["total_duration"] > 0)).clip(0, 1),
            "video_days_since_last_watch": _days_ago(reference, frame["last_watched_at"]),
            "dashboard_overall_completion": zero("overall_completion"),
            "dashboard_completed_items": zero("completed_items").astype(int),
            **{name: activity[name] for name in activity.columns},
            "sections_attempted_vs_due": (zero("sections_attempted") / sections_due.where(sections_due > 0)).clip(0, 2),
            "course_has_h5p": (frame.groupby("course_id")["h5p_total_contents"].transform("max").fillna(0) > 0).astype(int),
            "course_has_videos": (frame.groupby("course_id")["video_total_videos"].transform("max").fillna(0) > 0).astype(int),
        }
    )
    out["grade_percentile_in_course"] = _percentile_in_course(out, "mooc_grade_percentage")
    out["completion_percentile_in_course"] = _percentile_in_course(out, "mooc_completion_rate")
    out["grade_minus_course_mean"] = out["mooc_grade_percentage"] - out.groupby("course_id")["mooc_grade_percentage"].transform("mean")
    out["recent_activity_percentile_in_course"] = _percentile_in_course(out, "events_last_7_days")
    out["snapshot_date"] = snapshot_date
    return enforce_feature_types(out)


def enforce_feature_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast to the dictionary's types: floats, ints, and plain-`str` categoricals.

    pandas 3 infers a dedicated string dtype for text and CatBoost has failed on it,
    so categoricals are cast to Python `object` strings explicitly, wherever the
    frame came from (builder, database, or CSV).
    """
    frame = frame.copy()
    for feature in FEATURES:
        column = frame[feature.name]
        if column.dtype == {"int": "int64", "float": "float64"}.get(feature.dtype):
            continue
        if feature.dtype == "category":
            frame[feature.name] = column.astype(object).where(column.notna(), "none").astype(str).astype(object)
        elif feature.dtype == "int":
            frame[feature.name] = pd.to_numeric(column).fillna(0).astype("int64")
        else:
            frame[feature.name] = pd.to_numeric(column).astype("float64")
    return frame

