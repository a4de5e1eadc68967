"""Why a learner is at risk, in words a teacher understands, and can check.

A reason is a feature that raised this learner's score (a positive per-learner SHAP
contribution) *and* whose value is on the risky side of the course's median. The second
condition matters: a model may lean on a feature in a way that reads wrong for one
learner ("completed less than ..." said of someone ahead of most of the class), and a
teacher who sees one false reason trusts none. Each phrase states the learner's own
value, then how many classmates are better off on it, and the reason carries both
numbers, so every number in a phrase can be checked against the feature it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

REASONS_PER_SCORE = 3


@dataclass(frozen=True)
class Phrasing:
    """How one feature reads as a reason. `template` shows the learner's value as
    `{value}` (the stored value times `scale`: shares as %, a gap below the mean as a
    positive number); `risky` is the side on which the value can explain risk;
    `better_off` describes the classmates on the other side; `boundary`, where set, is a
    value the learner's must also be beyond for the phrase to be true and not read "0"."""

    template: str
    risky: Literal["low", "high"]
    better_off: str
    scale: float = 1.0
    boundary: float | None = None

    def on_risky_side(self, value: np.ndarray, of: float) -> np.ndarray:
        return value < of if self.risky == "low" else value > of

    def shown(self, value: float) -> float:
        return value * self.scale


PHRASINGS: dict[str, Phrasing] = {
    "days_since_last_activity": Phrasing("No activity in the course for {value:.0f} days", "high", "were active more recently", boundary=1.0),
    "has_any_activity": Phrasing("Has never opened the course", "low", "have opened it"),
    "days_inactive_share": Phrasing("Inactive for {value:.0f}% of their time in the course", "high", "were inactive for less of theirs", 100),
    "mooc_grade_percentage": Phrasing("Grade so far is {value:.0f}%", "low", "have a higher grade"),
    "grade_percentile_in_course": Phrasing("Grade ranks at percentile {value:.0f} of the class", "low", "rank higher"),
    "grade_minus_course_mean": Phrasing("Grade is {value:.0f} points below the class average", "low", "are closer to the average or above it", -1, -1.0),
    "completion_percentile_in_course": Phrasing("Course completion ranks at percentile {value:.0f} of the class", "low", "rank higher"),
    "mooc_completion_rate": Phrasing("Has completed {value:.0f}% of the course units", "low", "have completed more", 100),
    "progress_percent": Phrasing("Course progress is {value:.0f}%", "low", "have progressed further"),
    "completed_blocks": Phrasing("Has completed {value:.0f} course units", "low", "have completed more"),
    "graded_attempt_rate": Phrasing("Has attempted {value:.0f}% of the graded assignments", "low", "have attempted more", 100),
    "graded_sections_attempted": Phrasing("Has attempted {value:.0f} graded assignments", "low", "have attempted more"),
    "attempted_sections_avg_percent": Phrasing("Averages {value:.0f}% on the assignments attempted", "low", "average more"),
    "mooc_is_passed": Phrasing("Not yet above the pass mark", "low", "are above it"),
    "h5p_completion_rate": Phrasing("Has finished {value:.0f}% of the interactive exercises", "low", "have finished more", 100),
    "h5p_completed_contents": Phrasing("Has finished {value:.0f} interactive exercises", "low", "have finished more"),
    "h5p_score_percentage": Phrasing("Scores {value:.0f}% on interactive exercises", "low", "score higher"),
    "h5p_days_since_last_finish": Phrasing("Last finished an exercise {value:.0f} days ago", "high", "finished one more recently", boundary=1.0),
    "h5p_avg_attempts": Phrasing("Needs {value:.1f} attempts per exercise on average", "high", "need fewer"),
    "video_completed_videos": Phrasing("Has watched {value:.0f} videos to the end", "low", "have watched more"),
    "video_watch_ratio": Phrasing("Has watched {value:.0f}% of the length of the videos started", "low", "watched more of theirs", 100),
    "video_watch_time_minutes": Phrasing("Has watched {value:.0f} minutes of video in all", "low", "have watched more"),
    "video_days_since_last_watch": Phrasing("Last watched a video {value:.0f} days ago", "high", "watched one more recently", boundary=1.0),
    "dashboard_overall_completion": Phrasing("Has completed {value:.0f}% of the exercises and videos", "low", "have completed more"),
    "discussion_total_interactions": Phrasing("Has posted {value:.0f} times in the forum", "low", "have posted more"),
    "enrolled_days_after_start": Phrasing("Enrolled {value:.0f} days after the course started", "high", "enrolled earlier", boundary=1.0),
    "events_last_7_days": Phrasing("Worked on {value:.0f} exercises or videos in the past week", "low", "did more"),
    "events_last_14_days": Phrasing("Worked on {value:.0f} exercises or videos in the past two weeks", "low", "did more"),
    "activity_trend_7_days": Phrasing("Worked on {value:.0f} fewer exercises or videos than in the week before", "low", "slowed down less or not at all", -1, -0.5),
    "active_days": Phrasing("Active on {value:.0f} days so far", "low", "were active on more"),
    "weeks_active_share": Phrasing("Active in {value:.0f}% of their weeks in the course", "low", "came more regularly", 100),
    "first_week_events": Phrasing("Worked on {value:.0f} exercises or videos in their first week", "low", "started more strongly"),
    "h5p_score_trend": Phrasing("Exercise scores this week are {value:.0f} points below their earlier ones", "low", "kept up their scores better", -1, -0.5),
    "sections_attempted_vs_due": Phrasing("Has attempted {value:.0f}% of the graded assignments due so far", "low", "have attempted more of theirs", 100),
    "recent_activity_percentile_in_course": Phrasing("Activity over the past week ranks at percentile {value:.0f} of the class", "low", "rank higher"),
}
WHEN_NULL: dict[str, str] = {
    "days_since_last_activity": "Has never been active",
    "h5p_days_since_last_finish": "Has not finished any exercise",
    "video_days_since_last_watch": "Has not watched any video",
}


@dataclass(frozen=True)
class Cohort:
    """One feature across a course: the median of the known values, which decides the risky
    side, and those values sorted, to count the classmates better off (a binary search,
    not a scan per learner). A classmate without a value (never active, nothing started)
    is never better off, but is a classmate: they count in the share's denominator."""

    median: float
    ordered: np.ndarray
    learners: int

    @classmethod
    def of(cls, values: np.ndarray) -> Cohort:
        known = np.sort(values[~np.isnan(values)])
        return cls(float(np.median(known)) if len(known) else float("nan"), known, len(values))

    def better_off_shares(self, values: np.ndarray, risky: str) -> np.ndarray:
        """For each learner's value, the share (%) of classmates strictly better off on it."""
        if self.learners <= 1:
            return np.zeros(len(values))
        if risky == "low":
            better = len(self.ordered) - np.searchsorted(self.ordered, values, side="right")
        else:
            better = np.searchsorted(self.ordered, values, side="left")
        return 100.0 * better / (self.learners - 1)  # the learner is never better off than themself


def _honest(rows: int, features: list[str], values: dict[str, np.ndarray], cohorts: dict[str, Cohort]) -> np.ndarray:
    """Rows x features: could this feature be given as this learner's reason? Phrased, and
    on the risky side of the class median (and of the phrase's boundary), or missing with
    a phrase for that."""
    honest = np.zeros((rows, len(features)), dtype=bool)
    for j, name in enumerate(features):
        if name not in cohorts:
            continue
        phrasing, value = PHRASINGS[name], values[name]
        with np.errstate(invalid="ignore"):
            risky = phrasing.on_risky_side(value, cohorts[name].median)
            if phrasing.boundary is not None:
                risky &= phrasing.on_risky_side(value, phrasing.boundary)
        honest[:, j] = np.where(np.isnan(value), name in WHEN_NULL, risky)
    return honest


def _describe(feature: str, value: float, share: float, contribution: float) -> dict:
    base = {"feature": feature, "contribution": round(contribution, 4)}
    if np.isnan(value):
        return {**base, "value": None, "text": WHEN_NULL[feature]}
    phrasing = PHRASINGS[feature]
    text = phrasing.template.format(value=phrasing.shown(value)) + f", {share:.0f}% of classmates {phrasing.better_off}"
    return {**base, "value": round(float(value), 3), "classmates_better_off": round(float(share), 1), "text": text}


def top_reasons(frame: pd.DataFrame, features: list[str], contributions: np.ndarray) -> list[list[dict]]:
    """For each learner (row of one course's `frame`), up to REASONS_PER_SCORE reasons: the
    honest features (see _honest) that raised the score, the most first."""
    phrased = [name for name in features if name in PHRASINGS]
    values = {name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float) for name in phrased}
    cohorts = {name: Cohort.of(values[name]) for name in phrased}
    shares = {name: cohorts[name].better_off_shares(values[name], PHRASINGS[name].risky) for name in phrased}
    usable = (contributions > 0) & _honest(len(frame), features, values, cohorts)
    ranked = np.argsort(-np.where(usable, contributions, -np.inf), axis=1)[:, :REASONS_PER_SCORE]
    return [
        [
            _describe(features[j], values[features[j]][row], shares[features[j]][row], float(contributions[row, j]))
            for j in top if usable[row, j]
        ]
        for row, top in enumerate(ranked)
    ]
