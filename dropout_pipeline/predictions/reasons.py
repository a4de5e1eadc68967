"""Why a learner is at risk, in words a teacher understands.

The reasons are the three features that pushed this learner's risk up the most
(per-learner SHAP contributions from CatBoost), each phrased with the learner's value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dropout_pipeline.features.dictionary import FEATURES

PHRASES: dict[str, str] = {
    "days_since_last_activity": "No activity in the course for {value:.0f} days",
    "has_any_activity": "Has never opened the course",
    "days_inactive_share": "Inactive for {pct:.0f}% of the time since enrolling",
    "mooc_grade_percentage": "Grade so far is only {value:.0f}%",
    "grade_percentile_in_course": "Grade is lower than {rest:.0f}% of classmates",
    "grade_minus_course_mean": "Grade is {neg:.0f} points below the class average",
    "completion_percentile_in_course": "Has completed less than {rest:.0f}% of classmates",
    "mooc_completion_rate": "Has completed {pct:.0f}% of the course material",
    "progress_percent": "Course progress is {value:.0f}%",
    "completed_blocks": "Completed only {value:.0f} course units",
    "graded_attempt_rate": "Attempted {pct:.0f}% of graded assignments",
    "graded_sections_attempted": "Attempted {value:.0f} graded assignments",
    "attempted_sections_avg_percent": "Averages {value:.0f}% on the assignments attempted",
    "h5p_completion_rate": "Finished {pct:.0f}% of the interactive exercises",
    "h5p_completed_contents": "Finished {value:.0f} interactive exercises",
    "h5p_score_percentage": "Scores {value:.0f}% on interactive exercises",
    "h5p_days_since_last_finish": "Last finished an exercise {value:.0f} days ago",
    "h5p_avg_attempts": "Needs {value:.1f} attempts per exercise on average",
    "video_completed_videos": "Watched {value:.0f} videos to the end",
    "video_watch_ratio": "Watches {pct:.0f}% of the videos started",
    "video_watch_time_minutes": "Watched {value:.0f} minutes of video in all",
    "video_days_since_last_watch": "Last watched a video {value:.0f} days ago",
    "dashboard_overall_completion": "Completed {value:.0f}% of exercises and videos",
    "discussion_total_interactions": "{value:.0f} posts in the forum",
    "days_since_enrollment": "Enrolled {value:.0f} days ago",
    "enrolled_days_after_start": "Enrolled {value:.0f} days after the course started",
    "enrollment_mode": "Enrolled on the {value} track",
    "mooc_is_passed": "Not yet above the pass mark",
}
WHEN_NULL: dict[str, str] = {
    "days_since_last_activity": "Has never been active",
    "h5p_days_since_last_finish": "Has not finished any exercise",
    "video_days_since_last_watch": "Has not watched any video",
}
MEANINGS = {f.name: f.meaning for f in FEATURES}


def phrase(feature: str, value) -> str:
    template = PHRASES.get(feature)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return WHEN_NULL.get(feature, f"{MEANINGS.get(feature, feature)}: unknown")
    if template is None:
        return f"{MEANINGS.get(feature, feature)}: {value:.2f}" if isinstance(value, float) else f"{MEANINGS.get(feature, feature)}: {value}"
    if isinstance(value, str):
        return template.format(value=value)
    number = float(value)
    return template.format(value=number, pct=100 * number, rest=100 - number, neg=-number)


def top_reasons(frame: pd.DataFrame, features: list[str], contributions: np.ndarray, count: int = 3) -> list[list[dict]]:
    """For each row, the `count` features raising its risk most, as dicts with text."""
    order = np.argsort(-contributions, axis=1)[:, :count]
    values = frame[features].to_numpy(dtype=object)
    reasons = []
    for row, top in enumerate(order):
        picked = [j for j in top if contributions[row, j] > 0]
        reasons.append(
            [
                {
                    "feature": features[j],
                    "value": None if pd.isna(values[row, j]) else (values[row, j] if isinstance(values[row, j], str) else round(float(values[row, j]), 3)),
                    "contribution": round(float(contributions[row, j]), 4),
                    "text": phrase(features[j], values[row, j]),
                }
                for j in picked
            ]
        )
    return reasons
