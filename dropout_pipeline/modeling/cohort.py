"""Cohort-relative model inputs: a learner's behaviour as a rank among classmates.

Raw counts do not travel between courses: a course without videos has fewer events, a
long course more units, a demanding one lower grades. What carries over is where a
learner stands in their own class on the same day (the bottom tenth of activity means
the same in a course of 30 as in one of 5,000). So every candidate model sees, beside
each per-learner behaviour feature, its percentile rank (0-1) among the course's learners
on the snapshot date: known at that date (as of the cohort), the same in training rows
(one course and date at a time) and when a course is scored (all its learners at once).
A learner without a value (never active, nothing started) has no rank: the models treat
it as missing, as they do the feature.

Reasons stay in the dictionary's words: a rank's contribution is credited to the feature
it ranks (see source_feature).
"""

from __future__ import annotations

import pandas as pd

from dropout_pipeline.features.dictionary import EVENTS, FEATURES, STATE

RANK_SUFFIX = "__cohort_rank"
COHORT_KEY = ["course_id", "snapshot_date"]

# What the platform says of each learner (its state and the timed events), in numbers:
# not the calendar (days, comparable across courses already), nor descriptions of the
# course (the same for the whole class), nor the dictionary's own percentiles.
RANKED_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.dtype != "category" and not f.course_level and f.as_of in (STATE, EVENTS)
)


def rank_column(feature: str) -> str:
    return f"{feature}{RANK_SUFFIX}"


def source_feature(model_input: str) -> str:
    """The dictionary feature a model input comes from (itself, or the feature it ranks)."""
    return model_input.removesuffix(RANK_SUFFIX)


def model_inputs(features: list[str]) -> list[str]:
    """The columns a model learns from: the features, then the ranks of those ranked."""
    return [*features, *(rank_column(name) for name in features if name in RANKED_FEATURES)]


def with_cohort_ranks(frame: pd.DataFrame, inputs: list[str]) -> pd.DataFrame:
    """`frame`'s `inputs` columns, the rank columns among them computed per course and date."""
    ranked = [source_feature(name) for name in inputs if name.endswith(RANK_SUFFIX)]
    if not ranked:
        return frame[inputs]
    ranks = frame.groupby(COHORT_KEY, sort=False)[ranked].rank(pct=True, method="average")
    ranks.columns = [rank_column(name) for name in ranked]
    return pd.concat([frame, ranks], axis=1)[inputs]
