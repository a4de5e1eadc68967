"""Why a learner is at risk, or what keeps them low, in words a teacher understands and can check.

A risk factor is a feature that raised this learner's score (a positive per-learner SHAP
contribution) *and* on which the learner is on the risky side of the course's median. A
learner at LOW is given protective factors instead: features that lowered the score and on
which the learner is on the safer side ("In their favour: ..."); risk factors beside a
score of 0.1 read as an alarm the score does not raise.

Each phrase states the learner's own value, then the share of classmates on the other side
of it, and the reason carries both numbers, so every number can be checked against the
feature it names. A teacher who sees one false reason trusts none, so a reason is given
only where the phrase is true *as shown*:

- every comparison is made on values rounded as the phrase prints them: a completion of
  99.6% reads "100%", and is not cited as below a class median that also reads 100%; a
  classmate who reads the same as the learner is not counted as better off;
- the learner's shown value is strictly past the class median (of the classmates with a
  value), shown the same way, and at least half of the classmates are on the other side
  (a classmate without a value is never on it, but counts);
- a missing value ("Has not watched any video") is a risk factor only where the course has
  that kind of content: in a course without videos it is true of everyone and explains
  nothing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

REASONS_PER_SCORE = 3
MIN_SHARE = 50.0  # % of classmates a reason's side must hold
RISK, PROTECTIVE = "risk", "protective"
PROTECTIVE_PREFIX = "In their favour: "

_DECIMALS = re.compile(r"\{value:\.(\d)f\}")
_ONE_DAYS = re.compile(r"(?<![\d.])1 days\b")


@dataclass(frozen=True)
class Phrasing:
    """How one feature reads as a reason. `template` shows the learner's value as `{value}`
    (the stored value times `scale`: shares as %, a gap below the mean as a positive number),
    rounded as its format says. `side` is the side of the class median (in stored values) on
    which the phrase is true of the learner; `others` describes the classmates strictly on
    the other side, whose share the reason cites; `boundary`, where set, is a stored value the
    learner's must also be past (as shown), so the phrase never reads "0 points below"."""

    template: str
    side: Literal["low", "high"]
    others: str
    scale: float = 1.0
    boundary: float | None = None

    @property
    def decimals(self) -> int:
        found = _DECIMALS.search(self.template)
        return int(found.group(1)) if found else 0

    def shown(self, value: np.ndarray | float) -> np.ndarray:
        """Values as the phrase prints them (NaN stays NaN). `+ 0.0` turns -0.0 into 0.0."""
        return np.round(np.asarray(value, dtype=float) * self.scale, self.decimals) + 0.0

    @property
    def low_as_shown(self) -> bool:
        """Whether the phrase's side is the low one among shown values: a negative scale turns
        the side over ("12 points below" grows as the grade falls)."""
        return (self.side == "low") == (self.scale > 0)

    def past(self, shown: np.ndarray, of: np.ndarray | float) -> np.ndarray:
        """Shown values strictly on the phrase's side of `of` (also shown)."""
        with np.errstate(invalid="ignore"):
            return shown < of if self.low_as_shown else shown > of

    def text(self, shown: float, share: float) -> str:
        return self.template.format(value=shown) + f", {share:.0f}% of classmates {self.others}"


RISK_PHRASINGS: dict[str, Phrasing] = {
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

# The same features read from the safer side, for a learner at LOW. Opening the course and
# the enrolment date are left out: neither is something a teacher would credit.
PROTECTIVE_PHRASINGS: dict[str, Phrasing] = {
    "days_since_last_activity": Phrasing("Last active in the course {value:.0f} days ago", "low", "have been away longer"),
    "days_inactive_share": Phrasing("Inactive for only {value:.0f}% of their time in the course", "low", "were inactive for more of theirs", 100),
    "mooc_grade_percentage": Phrasing("Grade so far is {value:.0f}%", "high", "have a lower grade"),
    "grade_percentile_in_course": Phrasing("Grade ranks at percentile {value:.0f} of the class", "high", "rank lower"),
    "grade_minus_course_mean": Phrasing("Grade is {value:.0f} points above the class average", "high", "are closer to the average or below it", 1, 1.0),
    "completion_percentile_in_course": Phrasing("Course completion ranks at percentile {value:.0f} of the class", "high", "rank lower"),
    "mooc_completion_rate": Phrasing("Has completed {value:.0f}% of the course units", "high", "have completed less", 100),
    "progress_percent": Phrasing("Course progress is {value:.0f}%", "high", "have progressed less"),
    "completed_blocks": Phrasing("Has completed {value:.0f} course units", "high", "have completed fewer"),
    "graded_attempt_rate": Phrasing("Has attempted {value:.0f}% of the graded assignments", "high", "have attempted fewer", 100),
    "graded_sections_attempted": Phrasing("Has attempted {value:.0f} graded assignments", "high", "have attempted fewer"),
    "attempted_sections_avg_percent": Phrasing("Averages {value:.0f}% on the assignments attempted", "high", "average less"),
    "mooc_is_passed": Phrasing("Already above the pass mark", "high", "are not"),
    "h5p_completion_rate": Phrasing("Has finished {value:.0f}% of the interactive exercises", "high", "have finished fewer", 100),
    "h5p_completed_contents": Phrasing("Has finished {value:.0f} interactive exercises", "high", "have finished fewer"),
    "h5p_score_percentage": Phrasing("Scores {value:.0f}% on interactive exercises", "high", "score lower"),
    "h5p_days_since_last_finish": Phrasing("Last finished an exercise {value:.0f} days ago", "low", "finished one longer ago"),
    "h5p_avg_attempts": Phrasing("Needs {value:.1f} attempts per exercise on average", "low", "need more"),
    "video_completed_videos": Phrasing("Has watched {value:.0f} videos to the end", "high", "have watched fewer"),
    "video_watch_ratio": Phrasing("Has watched {value:.0f}% of the length of the videos started", "high", "watched less of theirs", 100),
    "video_watch_time_minutes": Phrasing("Has watched {value:.0f} minutes of video in all", "high", "have watched less"),
    "video_days_since_last_watch": Phrasing("Last watched a video {value:.0f} days ago", "low", "watched one longer ago"),
    "dashboard_overall_completion": Phrasing("Has completed {value:.0f}% of the exercises and videos", "high", "have completed less"),
    "discussion_total_interactions": Phrasing("Has posted {value:.0f} times in the forum", "high", "have posted less"),
    "events_last_7_days": Phrasing("Worked on {value:.0f} exercises or videos in the past week", "high", "did fewer"),
    "events_last_14_days": Phrasing("Worked on {value:.0f} exercises or videos in the past two weeks", "high", "did fewer"),
    "activity_trend_7_days": Phrasing("Worked on {value:.0f} more exercises or videos than in the week before", "high", "picked up less or slowed down", 1, 0.5),
    "active_days": Phrasing("Active on {value:.0f} days so far", "high", "were active on fewer"),
    "weeks_active_share": Phrasing("Active in {value:.0f}% of their weeks in the course", "high", "came less regularly", 100),
    "first_week_events": Phrasing("Worked on {value:.0f} exercises or videos in their first week", "high", "started less strongly"),
    "h5p_score_trend": Phrasing("Exercise scores this week are {value:.0f} points above their earlier ones", "high", "improved less or not at all", 1, 0.5),
    "sections_attempted_vs_due": Phrasing("Has attempted {value:.0f}% of the graded assignments due so far", "high", "have attempted less of theirs", 100),
    "recent_activity_percentile_in_course": Phrasing("Activity over the past week ranks at percentile {value:.0f} of the class", "high", "rank lower"),
}


@dataclass(frozen=True)
class Absence:
    """A missing value read as a risk factor: `text` says what the learner has never done;
    `content` names the course-level 0/1 feature saying the course has something to do it
    with (None: every course has, as every course can be opened)."""

    text: str
    content: str | None = None


WHEN_NULL: dict[str, Absence] = {
    "days_since_last_activity": Absence("Has never been active"),
    "h5p_days_since_last_finish": Absence("Has not finished any exercise", "course_has_h5p"),
    "video_days_since_last_watch": Absence("Has not watched any video", "course_has_videos"),
}


def course_has_content(frame: pd.DataFrame, absence: Absence, values: np.ndarray) -> bool:
    """Whether "has never ..." can mean anything in this course: it lists that content, or
    some learner has a value (an uploaded file may lack the course-level column)."""
    if absence.content is None or not np.isnan(values).all():
        return True
    if absence.content not in frame.columns:
        return False
    return bool((pd.to_numeric(frame[absence.content], errors="coerce").fillna(0) > 0).any())


@dataclass(frozen=True)
class Standing:
    """Each learner of one course on one feature, as one phrasing shows it: whether the phrase
    is true of them (see the module docstring) and the share (%) of classmates strictly on
    the other side, counted on shown values by a binary search over the sorted known ones."""

    true_of: np.ndarray
    shares: np.ndarray
    shown: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, phrasing: Phrasing) -> Standing:
        shown = phrasing.shown(values)
        known = np.sort(shown[~np.isnan(shown)])
        shares = _shares_on_other_side(shown, known, phrasing)
        true_of = phrasing.past(shown, _shown_median(values, phrasing)) & (shares >= MIN_SHARE)
        if phrasing.boundary is not None:
            true_of &= phrasing.past(shown, phrasing.shown(phrasing.boundary))
        return cls(true_of, shares, shown)


def _shown_median(values: np.ndarray, phrasing: Phrasing) -> float:
    """The class median of the known values, rounded as the phrase would print it."""
    known = values[~np.isnan(values)]
    return float(phrasing.shown(np.median(known))) if len(known) else float("nan")


def _shares_on_other_side(shown: np.ndarray, known: np.ndarray, phrasing: Phrasing) -> np.ndarray:
    """For each shown value, the share (%) of the other learners whose shown value is strictly
    on the far side of it from the phrase's side (the learner is never on it themself)."""
    learners = len(shown)
    if learners <= 1:
        return np.zeros(learners)
    if phrasing.low_as_shown:  # the others are above
        counted = len(known) - np.searchsorted(known, shown, side="right")
    else:
        counted = np.searchsorted(known, shown, side="left")
    return np.where(np.isnan(shown), 0.0, 100.0 * counted / (learners - 1))


@dataclass(frozen=True)
class Candidates:
    """Rows x features: which feature could be given as which learner's reason of one kind,
    and the standings the reasons are phrased from."""

    kind: str
    allowed: np.ndarray
    standings: dict[str, Standing]
    phrasings: dict[str, Phrasing]

    @classmethod
    def of(cls, kind: str, frame: pd.DataFrame, features: list[str], values: dict[str, np.ndarray]) -> Candidates:
        phrasings = PROTECTIVE_PHRASINGS if kind == PROTECTIVE else RISK_PHRASINGS
        standings = {name: Standing.of(values[name], phrasings[name]) for name in features if name in phrasings}
        allowed = np.zeros((len(frame), len(features)), dtype=bool)
        for j, name in enumerate(features):
            if name in standings:
                allowed[:, j] = standings[name].true_of
            if kind == RISK and name in WHEN_NULL and course_has_content(frame, WHEN_NULL[name], values[name]):
                allowed[:, j] |= np.isnan(values[name])
        return cls(kind, allowed, standings, phrasings)

    def describe(self, feature: str, row: int, value: float, contribution: float) -> dict:
        """The stored reason: its text, and the numbers in it beside it (the raw value, the
        share), so a reader or a test can check one against the other."""
        base = {"feature": feature, "kind": self.kind, "contribution": round(contribution, 4)}
        if math.isnan(value):
            return {**base, "value": None, "text": WHEN_NULL[feature].text}
        standing, phrasing = self.standings[feature], self.phrasings[feature]
        text = _singular_day(phrasing.text(float(standing.shown[row]), float(standing.shares[row])))
        share_key = "classmates_worse_off" if self.kind == PROTECTIVE else "classmates_better_off"
        if self.kind == PROTECTIVE:
            text = PROTECTIVE_PREFIX + text[0].lower() + text[1:]
        return {**base, "value": round(float(value), 3), share_key: round(float(standing.shares[row]), 1), "text": text}


def _singular_day(text: str) -> str:
    """ "1 day ago", not "1 days ago" (a risk phrase's boundary keeps it from 1 day)."""
    return _ONE_DAYS.sub("1 day", text) if " 1 days" in text else text  # the search only where it can match: a phrase per reason adds up


def top_reasons(frame: pd.DataFrame, features: list[str], contributions: np.ndarray, at_low: np.ndarray | None = None) -> list[list[dict]]:
    """For each learner (row of one course's `frame`), up to REASONS_PER_SCORE reasons: for a
    learner at LOW (`at_low`), the protective factors that lowered the score the most; for
    the others, the risk factors that raised it the most. Only reasons true as shown (see
    the module docstring)."""
    at_low = np.zeros(len(frame), dtype=bool) if at_low is None else np.asarray(at_low, dtype=bool)
    phrased = [name for name in features if name in RISK_PHRASINGS or name in PROTECTIVE_PHRASINGS]
    values = {name: pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float) for name in phrased}
    risk, protective = Candidates.of(RISK, frame, features, values), Candidates.of(PROTECTIVE, frame, features, values)
    weight = np.where(at_low[:, None], -contributions, contributions)  # how much the feature pushed the score the reason's way
    usable = (weight > 0) & np.where(at_low[:, None], protective.allowed, risk.allowed)
    ranked = np.argsort(-np.where(usable, weight, -np.inf), axis=1, kind="stable")[:, :REASONS_PER_SCORE]
    return [
        [
            (protective if at_low[row] else risk).describe(features[j], row, values[features[j]][row], float(contributions[row, j]))
            for j in top if usable[row, j]
        ]
        for row, top in enumerate(ranked)
    ]
