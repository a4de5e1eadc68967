"""Predictions: history with one latest row, reasons, the race on PostgreSQL, the legacy queries."""

import math
import re
import threading
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.predictions.queries import course_statistics, model_comparison, prediction_history, students_with_latest_prediction, worklist
from dropout_pipeline.predictions.reasons import PROTECTIVE_PHRASINGS, RISK_PHRASINGS, top_reasons
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.modeling.scorers import load_scorer
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline.storage.model_tables import default_model
from dropout_pipeline.storage.prediction_tables import append_predictions
from dropout_pipeline_tests.conftest import resources_for


def refresh(defs, instance, course_id):
    result = defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id)
    assert result.success
    return result


def test_every_learner_is_shown_unscored_until_predicted_then_scored_with_reasons_and_history(simulator, trained_copy, instance):
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"]))
    course_id = trained_copy["running"][0]
    instance.add_dynamic_partitions("courses", [course_id])
    engine = engine_for(trained_copy["url"])

    ingest_only = [dg.AssetKey(k) for k in ("enrollments", "mooc_grades", "mooc_progress", "mooc_discussions", "h5p_scores",
                                            "h5p_scores_summary", "video_progress", "video_progress_summary", "dashboard_summary", "student_features")]
    assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id, asset_selection=ingest_only).success
    with engine.connect() as connection:
        waiting = students_with_latest_prediction(connection, course_id)
    assert len(waiting) > 0 and waiting["fail_risk_score"].isna().all() and waiting["risk_level"].isna().all()  # no made-up 50
    with engine.connect() as connection:
        unscored = course_statistics(connection, course_id)
    assert unscored["not_yet_predicted"] == unscored["total_students"] == len(waiting) and unscored["high_risk_count"] == 0
    assert unscored["avg_risk_score"] is None

    result = refresh(defs, instance, course_id)
    refresh(defs, instance, course_id)
    with engine.connect() as connection:
        students = students_with_latest_prediction(connection, course_id)
        rows = pd.read_sql(sa.select(schema.predictions).where(schema.predictions.c.course_id == course_id), connection)
        history = prediction_history(connection, int(students["user_id"].iloc[0]), course_id)
        stats = course_statistics(connection, course_id)
        comparison = model_comparison(connection, course_id)
    learners = len(waiting)
    assert len(students) == learners and students["model_name"].notna().all()
    assert len(rows) == 2 * learners and rows["is_latest"].sum() == learners
    assert rows.groupby("user_id")["is_latest"].sum().eq(1).all()
    assert len(history) == 2 and history["predicted_at"].is_monotonic_increasing
    assert rows["fail_risk_score"].between(0, 100).all()
    assert (rows["risk_level"] == "HIGH").eq(rows["fail_risk_score"] >= 70).all()
    assert ((rows["risk_level"] == "LOW") == (rows["fail_risk_score"] < 40)).all()
    top = students.iloc[0]
    assert top["fail_risk_score"] == students["fail_risk_score"].max()
    assert 1 <= len(top["reasons"]) <= 3 and all(r["text"] and r["contribution"] > 0 for r in top["reasons"])
    assert stats["total_students"] == learners and stats["not_yet_predicted"] == 0
    assert comparison["total_predictions"].tolist() == [2 * learners]
    metadata = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "predictions").materialization.metadata
    assert metadata["model"].value == "fail_risk_model v1" and sum(metadata["risk_levels"].value.values()) == learners


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def test_every_number_in_every_reason_is_the_value_of_the_feature_it_names_for_both_scores_and_the_top_ranks(simulator, trained_copy, instance):
    """A reason states the learner's own value (as the feature dictionary stores it, shares
    shown as %, rounded as the phrase prints it); test_reasons checks the side and the share
    of classmates it cites."""
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"]))
    course_id = trained_copy["running"][0]
    instance.add_dynamic_partitions("courses", [course_id])
    refresh(defs, instance, course_id)
    with engine_for(trained_copy["url"]).connect() as connection:
        features = read_current_features(connection, course_id).set_index("user_id")
        latest = pd.read_sql(sa.select(schema.predictions).where(schema.predictions.c.course_id == course_id, schema.predictions.c.is_latest), connection)
        models = {score: load_scorer(Path(default_model(connection, target)["model_path"]))
                  for score, target in (("fail_risk_score", "fail"), ("dropout_risk_score", "dropout"))}
    checked = {"reasons": 0, "dropout_reasons": 0}
    for row in latest.itertuples():
        for kind in checked:
            for given in getattr(row, kind):
                value = pd.to_numeric(features[given["feature"]], errors="coerce").loc[row.user_id]
                numbers = [float(n) for n in NUMBER.findall(given["text"])]
                if pd.isna(value):
                    assert given["value"] is None and numbers == [], given
                    continue
                phrasing = (PROTECTIVE_PHRASINGS if given["kind"] == "protective" else RISK_PHRASINGS)[given["feature"]]
                assert given["value"] == pytest.approx(value, abs=1e-3), given
                if "{value" in phrasing.template:
                    assert numbers[0] == pytest.approx(value * phrasing.scale, abs=0.5), given
                    assert value * phrasing.scale >= 0, given  # "12 points below the average" is never said of a learner above it
                checked[kind] += 1
    assert checked["reasons"] > len(latest) and checked["dropout_reasons"] > len(latest)
    for score, model in models.items():  # calibrated, and the top of the list ranks: no ties at 100, none made by storing
        top = latest.set_index("user_id")[score].nlargest(10)
        probabilities = model.predict_proba(features.loc[top.index].reset_index())
        assert top.max() < 100 and top.nunique() == len(np.unique(probabilities)), (top.tolist(), probabilities)


def scored_frame(course_id: str, users: range, score: float) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": list(users), "course_id": course_id, "fail_risk_score": score, "dropout_risk_score": None, "risk_level": "HIGH",
        "snapshot_date": date(2026, 11, 22), "snapshot_grade": 10.0, "snapshot_completion_rate": 0.1, "reasons": [[] for _ in users], "dropout_reasons": None,
    })


def test_racing_prediction_runs_leave_exactly_one_latest_row_per_learner_on_postgresql(postgres_url):
    engine = engine_for(postgres_url)
    course_id = "course-v1:RACE+R1+2026_S2"
    with engine.begin() as connection:
        connection.execute(schema.courses.insert(), [{"course_id": course_id, "display_name": "Race", "org": "RACE",
                                                      "start": datetime(2026, 9, 1), "end": None, "discovered_at": datetime(2026, 9, 1)}])
    users = range(1, 301)
    barrier, errors = threading.Barrier(4), []

    def run(version: int) -> None:
        try:
            barrier.wait()
            with engine.begin() as connection:
                append_predictions(connection, course_id, scored_frame(course_id, users, float(version)),
                                   {"model_name": "m", "model_version": version}, datetime.now())
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(v,)) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as connection:
        rows = pd.read_sql(sa.select(schema.predictions.c.user_id, schema.predictions.c.is_latest, schema.predictions.c.model_version), connection)
    assert len(rows) == 4 * len(users)
    latest = rows[rows["is_latest"]]
    assert len(latest) == len(users) and latest["user_id"].is_unique
    assert latest["model_version"].nunique() == 1  # the latest rows all come from the run that committed last


def test_classmates_without_a_value_are_never_better_off_but_are_counted():
    """Ten learners: two never active, eight last active 1 to 6, 8 and 20 days ago. The one at
    20 days: seven of nine classmates were active more recently, not all of them."""
    days = pd.DataFrame({"days_since_last_activity": [np.nan] * 2 + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 20.0]})
    contributions = np.ones((10, 1))
    reasons = top_reasons(days, ["days_since_last_activity"], contributions)
    assert reasons[9] == [{"feature": "days_since_last_activity", "kind": "risk", "contribution": 1.0, "value": 20.0, "classmates_better_off": 77.8,
                           "text": "No activity in the course for 20 days, 78% of classmates were active more recently"}]
    assert reasons[0] == [{"feature": "days_since_last_activity", "kind": "risk", "contribution": 1.0, "value": None, "text": "Has never been active"}]
    assert reasons[2] == reasons[3] == []  # below the active learners' median: not a reason


def test_the_worklist_is_the_riskiest_predicted_share_of_the_course_default_or_its_own(simulator, trained_copy, instance):
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"]))
    course_id = trained_copy["running"][0]
    instance.add_dynamic_partitions("courses", [course_id])
    refresh(defs, instance, course_id)
    engine = engine_for(trained_copy["url"])
    with engine.connect() as connection:
        everyone = students_with_latest_prediction(connection, course_id)
        default = worklist(connection, course_id)
    assert len(default) == math.ceil(0.10 * len(everyone)) > 0
    assert default["fail_risk_score"].is_monotonic_decreasing and default["fail_risk_score"].min() >= everyone["fail_risk_score"].iloc[len(default)]
    with engine.begin() as connection:
        connection.execute(schema.course_model_mapping.insert(), [{"course_id": course_id, "model_name": "fail_risk_model", "auto_predict": True,
                                                                  "predict_frequency": "daily", "worklist_share": 0.25, "updated_at": datetime(2026, 11, 22)}])
    with engine.connect() as connection:
        own = worklist(connection, course_id)
    assert len(own) == math.ceil(0.25 * len(everyone)) and own.head(len(default)).equals(default)
