"""Engagement anomalies: scores that do not depend on row order, a threshold chosen on finished
courses (not a share of each class), kept until a course is frozen, and an asset that flags
nobody when there is no finished course to choose one from."""

from datetime import date, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.analytics.anomalies import (
    ENGAGEMENT_FEATURES,
    MAX_FLAGGED_SHARE,
    MIN_LEARNERS,
    AnomalyThreshold,
    anomaly_scores,
    choose_threshold,
    course_anomalies,
    current_threshold,
    read_threshold,
    threshold_from_finished,
)
from dropout_pipeline.defs.analytics import engagement_anomalies, evidence_fusion
from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.analytics_tables import (
    read_anomalies,
    read_anomaly_threshold,
    read_fusion,
    replace_anomalies,
    replace_fusion,
    store_anomaly_threshold,
)
from dropout_pipeline.storage.database import engine_for, frame_records
from dropout_pipeline_tests.conftest import course_ids, resources_for

NOW = datetime(2026, 11, 22, 6)


def engagement(learners: int, seed: int, unusual: int = 0) -> pd.DataFrame:
    """Learners with ordinary engagement, the first `unusual` of them far outside it."""
    rng = np.random.default_rng(seed)
    values = rng.normal(10, 2, size=(learners, len(ENGAGEMENT_FEATURES))).clip(0)
    values[:unusual] *= rng.choice([0.0, 4.0], size=(unusual, 1))  # gone silent, or four times as busy
    frame = pd.DataFrame(values, columns=list(ENGAGEMENT_FEATURES))
    return frame.assign(course_id=f"course-v1:T+C{seed}+2025_S1", user_id=np.arange(1000, 1000 + learners), snapshot_date=date(2025, 3, 9))


def test_scores_are_the_same_whatever_the_row_order_and_put_the_unusual_on_top():
    learners = engagement(600, seed=1, unusual=6)  # more than a tree's subsample of 256: which rows it draws depends on the order
    scores = anomaly_scores(learners).set_axis(learners["user_id"])
    shuffled = learners.sample(frac=1.0, random_state=3)
    again = anomaly_scores(shuffled).set_axis(shuffled["user_id"])
    pd.testing.assert_series_equal(scores.sort_index(), again.sort_index())  # exactly, not approximately
    assert scores.between(0, 1).all()
    assert set(scores.nlargest(6).index) == set(learners["user_id"].head(6))


def test_a_list_too_small_gets_no_scores_and_bad_rows_are_named():
    small = engagement(MIN_LEARNERS - 1, seed=2)
    assert anomaly_scores(small).isna().all()
    with pytest.raises(ValueError, match="active_days"):
        anomaly_scores(engagement(30, seed=2).assign(active_days=np.nan))
    with pytest.raises(ValueError, match="repeated"):
        anomaly_scores(pd.concat([engagement(30, seed=2)] * 2))


def test_the_threshold_is_the_f1_best_below_the_cap_not_a_fixed_share():
    scores = np.arange(1, 21) / 20  # 0.05 .. 1.00
    dropped = scores >= 0.85  # the four highest of twenty: 20% of the class
    threshold, f1, precision, recall, share = choose_threshold(scores, dropped)
    assert (threshold, f1, precision, recall, share) == pytest.approx((0.85, 1.0, 1.0, 1.0, 0.20))
    # the unusual drop out less than the rest: nothing below the cap beats the dropout rate
    assert choose_threshold(scores, scores <= 0.25) is None
    # dropouts spread over the whole top half: the best F1 would flag all of them; the cap stops it at a quarter
    half = choose_threshold(scores, scores > 0.5)
    assert half[4] <= MAX_FLAGGED_SHARE and half[2] == 1.0


def training_rows(course_id: str, seed: int, learners: int = 60, weeks: int = 3) -> pd.DataFrame:
    """A finished course's week-end training rows where the unusual fifth of the class drops out."""
    start = date(2025, 2, 3)
    frames = []
    for week in range(1, weeks + 1):
        frame = engagement(learners, seed=seed * 10 + week, unusual=learners // 5).assign(course_id=course_id)
        for name in FEATURE_NAMES:
            if name not in frame:
                frame[name] = 0
        frames.append(frame.assign(
            enrollment_mode="audit", mooc_letter_grade="none", snapshot_date=start + timedelta(days=7 * week - 1), snapshot_week=week,
            course_day=7 * week, semester="2025_S1", is_passed=~frame.index.isin(range(learners // 5)),
            is_dropout=frame.index.isin(range(learners // 5)), final_grade=0.0, created_at=NOW,
        ))
    return pd.concat(frames, ignore_index=True)


def test_the_threshold_comes_from_the_finished_courses_asked_for():
    first, second = training_rows("course-v1:T+A+2025_S1", seed=1), training_rows("course-v1:T+B+2025_S1", seed=2)
    both = threshold_from_finished(pd.concat([first, second]))
    alone = threshold_from_finished(first)
    assert both.courses == ("course-v1:T+A+2025_S1", "course-v1:T+B+2025_S1") and alone.courses == ("course-v1:T+A+2025_S1",)
    assert alone.rows == len(first) and both.rows == len(first) + len(second)
    assert 0.15 <= both.flagged_share <= MAX_FLAGGED_SHARE and both.flagged_share != pytest.approx(0.10, abs=0.01)
    assert both.precision > 0.6 and both.reliability > 0.5 and alone.threshold != both.threshold
    nothing = threshold_from_finished(first.iloc[0:0])
    assert nothing.threshold is None and "no finished course" in nothing.note


def store_training_rows(engine: sa.Engine, rows: pd.DataFrame) -> None:
    with engine.begin() as connection:
        connection.execute(schema.training_data.insert(), frame_records(rows))


def test_the_threshold_is_kept_until_a_course_is_frozen_and_excluding_a_course_chooses_without_it(sqlite_url):
    engine = engine_for(sqlite_url)
    store_training_rows(engine, training_rows("course-v1:T+A+2025_S1", seed=1))
    chosen = current_threshold(engine, NOW)
    with engine.begin() as connection:  # were it chosen again, it would not be this one
        connection.execute(schema.anomaly_thresholds.update().values(threshold=0.99, note="kept"))
    assert current_threshold(engine, NOW).threshold == 0.99
    store_training_rows(engine, training_rows("course-v1:T+B+2025_S1", seed=2))
    fresh = current_threshold(engine, NOW)
    assert fresh.threshold != 0.99 and len(fresh.courses) == 2 and fresh.threshold != chosen.threshold
    with engine.connect() as connection:
        kept = connection.execute(sa.select(schema.anomaly_thresholds.c.training_rows)).scalars().all()
        without_b = read_threshold(connection, exclude_courses=("course-v1:T+B+2025_S1",))
    assert sorted(kept) == [180, 360]
    assert without_b.threshold == chosen.threshold and without_b.courses == ("course-v1:T+A+2025_S1",)


def test_a_course_s_anomalies_are_replaced_whole_or_not_at_all_and_an_empty_course_leaves_none(sqlite_url):
    engine = engine_for(sqlite_url)
    learners = engagement(40, seed=4, unusual=3)
    threshold = AnomalyThreshold(0.6, 0.3, None, None, None, None, (), 0, "test")
    first = course_anomalies(learners, threshold)
    with engine.begin() as connection:
        replace_anomalies(connection, learners["course_id"].iloc[0], first, NOW)
    broken = first.assign(is_flagged=None)  # NOT NULL: the insert fails after the delete
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        replace_anomalies(connection, learners["course_id"].iloc[0], broken, NOW)
    with engine.connect() as connection:
        stored = read_anomalies(connection, learners["course_id"].iloc[0])
    assert len(stored) == 40 and stored["is_flagged"].tolist() == first["is_flagged"].tolist()
    assert stored["is_flagged"].sum() == (first["score"] >= 0.6).sum() > 0
    assert set(stored["features"].iloc[0]) == set(ENGAGEMENT_FEATURES)
    nobody = course_anomalies(learners.iloc[0:0], threshold)  # a course nobody has enrolled in yet
    with engine.begin() as connection:
        assert replace_anomalies(connection, learners["course_id"].iloc[0], nobody, NOW) == 0
    with engine.connect() as connection:
        assert read_anomalies(connection, learners["course_id"].iloc[0]).empty


def test_anomalies_fusion_and_thresholds_round_trip_on_every_engine(any_database_url):
    engine = engine_for(any_database_url)
    learners = engagement(30, seed=5, unusual=2)
    course_id = learners["course_id"].iloc[0]
    anomalies = course_anomalies(learners, AnomalyThreshold(0.6, 0.3, None, None, None, None, (), 0, "test"))
    fused = pd.DataFrame({"user_id": [1], "snapshot_date": [date(2025, 3, 9)], "belief": [0.4], "plausibility": [0.9], "uncertainty": [0.5],
                          "conflict": [0.6], "rule": ["yager"], "category": ["Moderate Risk"],
                          "sources": [{"model": {"at_risk": 0.4, "not_at_risk": 0.1, "either": 0.5}}]})
    kept = {"training_rows": 180, "threshold": None, "reliability": 0.0, "f1": None, "precision": None, "recall": None,
            "flagged_share": None, "courses": ["a"], "rows": 60, "note": "none", "chosen_at": NOW}
    for _twice in range(2):
        with engine.begin() as connection:
            replace_anomalies(connection, course_id, anomalies, NOW)
            replace_fusion(connection, course_id, fused, NOW)
            store_anomaly_threshold(connection, kept)
    with engine.connect() as connection:
        stored, fusion = read_anomalies(connection, course_id), read_fusion(connection, course_id)
        threshold = read_anomaly_threshold(connection, 180)
    assert stored["user_id"].tolist() == anomalies["user_id"].tolist() and np.allclose(stored["score"], anomalies["score"])
    assert stored["features"].tolist() == anomalies["features"].tolist()
    assert fusion["sources"].tolist() == fused["sources"].tolist() and fusion["rule"].tolist() == ["yager"]
    assert threshold["courses"] == ["a"] and threshold["threshold"] is None


def test_with_no_finished_course_every_learner_is_scored_nobody_flagged_and_nothing_fused(simulator, sqlite_url, tmp_path, instance):
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    course_id = course_ids(simulator)[1][0]
    assert defs.resolve_job_def("discover_courses").execute_in_process(instance=instance).success
    features = [dg.AssetKey(k) for k in ("enrollments", "mooc_grades", "mooc_progress", "mooc_discussions", "h5p_scores",
                                         "h5p_scores_summary", "video_progress", "video_progress_summary", "dashboard_summary", "student_features")]
    assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id, asset_selection=features).success
    result = dg.materialize([engagement_anomalies, evidence_fusion], instance=instance, partition_key=course_id,
                            resources=resources_for(simulator, sqlite_url, tmp_path / "models"))
    assert result.success
    metadata = result.asset_materializations_for_node("engagement_anomalies")[0].metadata
    unpredicted = result.asset_materializations_for_node("evidence_fusion")[0].metadata  # no model yet: nothing to fuse, no failure
    assert unpredicted["dagster/row_count"].value == 0 and "no predictions" in unpredicted["note"].value
    with engine_for(sqlite_url).connect() as connection:
        stored = read_anomalies(connection, course_id)
    assert metadata["threshold"].value == "none" and "no finished course" in metadata["threshold_rule"].value
    assert metadata["flagged"].value == 0 and metadata["dagster/row_count"].value == len(stored) > MIN_LEARNERS
    assert stored["score"].notna().all() and not stored["is_flagged"].any() and stored["threshold"].isna().all()
