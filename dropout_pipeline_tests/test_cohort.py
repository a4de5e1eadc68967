"""Cohort-relative model inputs: ranks within one course on one date, never across them."""

from datetime import date

import numpy as np
import pandas as pd

from dropout_pipeline.features.dictionary import FEATURE_NAMES, FEATURES
from dropout_pipeline.modeling.cohort import RANKED_FEATURES, model_inputs, rank_column, source_feature, with_cohort_ranks


def test_ranks_are_taken_within_one_course_on_one_date_and_a_missing_value_has_none():
    frame = pd.DataFrame(
        {
            "course_id": ["a", "a", "a", "a", "b", "b"],
            "snapshot_date": [date(2026, 3, 1)] * 3 + [date(2026, 3, 4)] + [date(2026, 3, 1)] * 2,
            "events_last_7_days": [0, 5, 10, 99, 2, 2],
            "days_since_last_activity": [3.0, np.nan, 1.0, 0.0, 2.0, 2.0],
        }
    )
    inputs = ["events_last_7_days", rank_column("events_last_7_days"), rank_column("days_since_last_activity")]
    ranked = with_cohort_ranks(frame, inputs)
    assert list(ranked.columns) == inputs
    # course a on March 1st: 0 < 5 < 10 -> 1/3, 2/3, 3/3; alone on March 4th -> 1; course b: a tie -> 0.75 each
    assert ranked[rank_column("events_last_7_days")].tolist() == [1 / 3, 2 / 3, 1.0, 1.0, 0.75, 0.75]
    days = ranked[rank_column("days_since_last_activity")]
    assert days.isna().tolist() == [False, True, False, False, False, False]  # never active: no rank, as no value
    assert days.dropna().tolist() == [1.0, 0.5, 1.0, 0.75, 0.75]


def test_a_course_scored_alone_gets_the_ranks_it_has_among_other_courses_and_dates():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "course_id": rng.choice(["a", "b", "c"], 300),
            "snapshot_date": rng.choice([date(2026, 3, 1), date(2026, 3, 4)], 300),
            "active_days": rng.integers(0, 20, 300),
        }
    )
    inputs = [rank_column("active_days")]
    together = with_cohort_ranks(frame, inputs)
    one = (frame["course_id"] == "b") & (frame["snapshot_date"] == date(2026, 3, 4))
    assert np.allclose(with_cohort_ranks(frame[one], inputs).to_numpy(), together[one].to_numpy())


def test_only_what_the_platform_says_of_each_learner_is_ranked_and_every_rank_names_its_feature():
    kinds = {f.name: f for f in FEATURES}
    assert RANKED_FEATURES and all(kinds[name].dtype != "category" and not kinds[name].course_level for name in RANKED_FEATURES)
    assert {"course_week", "course_has_videos", "total_blocks", "grade_percentile_in_course"}.isdisjoint(RANKED_FEATURES)
    inputs = model_inputs(list(FEATURE_NAMES))
    assert inputs[: len(FEATURE_NAMES)] == list(FEATURE_NAMES)
    assert {source_feature(name) for name in inputs} == set(FEATURE_NAMES)
