"""Features of the learner's recent behaviour, from the timed events of the H5P API.

The summaries say how much a learner has done; these say when: how active they were in
the last days, whether that is rising or falling, how regularly they come, how they
started, and whether they keep up with the work due. On real platforms these carry the
early signal that totals lack (a learner who did week 1 well and then stopped looks
like a good learner in the totals until weeks later).

Events are H5P contents finished (`h5p_scores.finished_at`) and videos watched
(`video_progress.last_watched_at`: the last time each video was watched), counted only
up to the end of the snapshot date, like every feature. The API keeps one time per item
(the latest), so a learner who returns to an item moves its event to the later day: on a
platform that answers `as_of` by filtering on those times, a replayed past loses the
earlier visit. The simulator keeps exact history; a real platform's replay may undercount
the past activity of learners who revisit, never overcount it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

KEY = ["user_id", "course_id"]
DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)

# What this module reads from the raw tables, beside what the builder reads.
EVENT_COLUMNS: dict[str, list[str]] = {
    "h5p_scores": ["finished_at", "percentage"],
    "video_progress": ["last_watched_at"],
}


def learner_events(tables: Mapping[str, pd.DataFrame], reference: pd.Timestamp) -> pd.DataFrame:
    """One row per event known by `reference`: KEY, `at`, and the H5P `percentage` (NaN for videos)."""
    parts = []
    h5p = tables.get("h5p_scores")
    if h5p is not None and len(h5p):
        parts.append(h5p[KEY + ["finished_at", "percentage"]].rename(columns={"finished_at": "at"}))
    videos = tables.get("video_progress")
    if videos is not None and len(videos):
        parts.append(videos[KEY + ["last_watched_at"]].rename(columns={"last_watched_at": "at"}).assign(percentage=np.nan))
    if not parts:
        return pd.DataFrame({"user_id": pd.Series(dtype="int64"), "course_id": pd.Series(dtype=object),
                             "at": pd.Series(dtype="datetime64[ns]"), "percentage": pd.Series(dtype=float)})
    events = pd.concat(parts, ignore_index=True)
    events["at"] = pd.to_datetime(events["at"])
    return events[events["at"].notna() & (events["at"] < reference)]


def _per_learner(values: pd.Series, learners: pd.DataFrame) -> np.ndarray:
    """A per-KEY series aligned to `learners` (NaN where a learner has none)."""
    return learners[KEY].merge(values.rename("value"), left_on=KEY, right_index=True, how="left")["value"].to_numpy()


def _count(rows: pd.DataFrame, learners: pd.DataFrame) -> np.ndarray:
    return np.nan_to_num(_per_learner(rows.groupby(KEY).size(), learners)).astype(int)


def _mean_score(rows: pd.DataFrame, learners: pd.DataFrame) -> np.ndarray:
    return _per_learner(rows.dropna(subset=["percentage"]).groupby(KEY)["percentage"].mean(), learners)


def activity_features(learners: pd.DataFrame, events: pd.DataFrame, reference: pd.Timestamp) -> pd.DataFrame:
    """Recent activity, trend, regularity and first-week engagement of each learner.

    `learners` has KEY, `start` (the course's, a local midnight: days are counted from it,
    so a day is the platform's local day) and `entry` (when the learner could first work:
    the later of enrolment and start); `events` comes from learner_events.
    """
    events = events.merge(learners[KEY + ["entry", "start"]], on=KEY, how="inner")
    age = reference - events["at"]
    since_entry = events["at"] - events["entry"]
    last_7 = _count(events[age <= WEEK], learners)
    previous_7 = _count(events[(age > WEEK) & (age <= 2 * WEEK)], learners)
    active_days = events.assign(day=(events["at"] - events["start"]) // DAY).drop_duplicates(subset=[*KEY, "day"])
    active_weeks = events.assign(week=(since_entry // WEEK).clip(lower=0)).drop_duplicates(subset=[*KEY, "week"])
    weeks_in = np.maximum(np.ceil((reference - learners["entry"]) / WEEK), 1).to_numpy()
    return pd.DataFrame(
        {
            "events_last_7_days": last_7,
            "events_last_14_days": last_7 + previous_7,
            "activity_trend_7_days": last_7 - previous_7,
            "active_days": _count(active_days, learners),
            "weeks_active_share": np.minimum(_count(active_weeks, learners) / weeks_in, 1.0),
            "first_week_events": _count(events[(since_entry >= pd.Timedelta(0)) & (since_entry < WEEK)], learners),
            "h5p_score_trend": _mean_score(events[age <= WEEK], learners) - _mean_score(events[age > WEEK], learners),
        },
        index=learners.index,
    )
