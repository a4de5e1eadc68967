"""Evidence fusion per learner: the masses are evidence.py's, the rules fire at their documented
thresholds, conflict sends a learner to Yager's rule and says so, the assets materialize on a
trained world, and the held-out reports compare like with like."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.analytics.anomalies import anomaly_holdout_report
from dropout_pipeline.analytics.evidence import Mass, from_anomaly, from_probability, from_rule, fuse, reliability_from_auc, vacuous
from dropout_pipeline.analytics.fusion import (
    INACTIVE_AFTER_DAYS,
    LOW_GRADE_BELOW_PERCENT,
    MISSED_DEADLINES_BELOW,
    EvidenceWeights,
    course_fusion,
    fuse_learners,
    fusion_holdout_report,
    rule_strengths,
    rules_fired,
)
from dropout_pipeline.defs.analytics import engagement_anomalies, evidence_fusion
from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.analytics_tables import read_fusion, read_latest_predictions
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import resources_for

WEIGHTS = EvidenceWeights(model_reliability=0.9, rule_strengths={"low_grade": 0.7, "inactivity": 0.6, "missed_deadlines": 0.5})


def learner(**values) -> dict:
    return {"probability": 0.8, "anomaly_score": 0.6, "anomaly_reliability": 0.5, "attempted_sections_avg_percent": 40.0,
            "days_since_last_activity": 20.0, "days_since_enrollment": 30.0, "course_day": 30, "sections_attempted_vs_due": 0.8, **values}


def test_a_learner_s_fusion_is_evidence_py_s_combination_of_its_masses():
    fused = fuse_learners(pd.DataFrame([learner()]), WEIGHTS).iloc[0]
    by_hand = {
        "model": from_probability(0.8, 0.9),  # (0.72, 0.18, 0.10)
        "anomaly": from_anomaly(0.6, 0.5),  # (0.30, 0, 0.70)
        "low_grade": from_rule(True, 0.7),  # 40% < 50%
        "inactivity": from_rule(True, 0.6),  # 20 days > 14
        "missed_deadlines": vacuous(),  # 0.8 of the sections due attempted
    }
    expected = fuse(by_hand)
    assert (fused["belief"], fused["plausibility"], fused["uncertainty"], fused["conflict"]) == pytest.approx(
        (expected.belief, expected.plausibility, expected.uncertainty, expected.conflict))
    # either = 0.1*0.7*0.3*0.4 = 0.0084; at_risk = 0.82 - 0.0084 = 0.8116; not = 0.28*0.084 - 0.0084 = 0.01512; K = 0.16488
    assert fused["conflict"] == pytest.approx(0.16488) and fused["belief"] == pytest.approx(0.8116 / 0.83512)
    assert (fused["rule"], fused["category"]) == ("dempster", "Extreme Risk")
    assert {name: Mass(**mass) for name, mass in fused["sources"].items()} == by_hand


def test_conflicting_sources_fall_back_to_yager_and_say_so():
    safe_by_the_model = learner(probability=0.05, anomaly_score=np.nan, anomaly_reliability=np.nan)
    weights = EvidenceWeights(0.95, {"low_grade": 0.9, "inactivity": 0.9, "missed_deadlines": 0.9})
    fused = fuse_learners(pd.DataFrame([safe_by_the_model]), weights).iloc[0]
    # model (0.0475, 0.9025, 0.05), two rules (0.9, 0, 0.1): K = 1 - 0.097 - 0.009025 - 0.0005 = 0.893475
    assert fused["rule"] == "yager" and fused["conflict"] == pytest.approx(0.893475)
    assert (fused["belief"], fused["uncertainty"]) == pytest.approx((0.097, 0.0005 + 0.893475))
    assert fused["category"] == "Low Risk" and fused["sources"]["anomaly"] == {"at_risk": 0.0, "not_at_risk": 0.0, "either": 1.0}


def test_each_rule_fires_past_its_threshold_and_not_without_its_input():
    rows = pd.DataFrame([
        learner(attempted_sections_avg_percent=LOW_GRADE_BELOW_PERCENT, days_since_last_activity=INACTIVE_AFTER_DAYS,
                sections_attempted_vs_due=MISSED_DEADLINES_BELOW),
        learner(attempted_sections_avg_percent=LOW_GRADE_BELOW_PERCENT - 0.1, days_since_last_activity=INACTIVE_AFTER_DAYS + 1,
                sections_attempted_vs_due=MISSED_DEADLINES_BELOW - 0.01),
        learner(attempted_sections_avg_percent=np.nan, days_since_last_activity=np.nan, sections_attempted_vs_due=np.nan),  # never active, 30 days in
        learner(days_since_last_activity=np.nan, days_since_enrollment=40.0, course_day=INACTIVE_AFTER_DAYS),  # enrolled early, course just begun
    ])
    fired = rules_fired(rows)
    assert fired.to_dict("list") == {"low_grade": [False, True, False, True], "inactivity": [False, True, True, False],
                                     "missed_deadlines": [False, True, False, False]}


def test_a_rule_s_strength_is_the_failure_rate_of_those_it_fired_on():
    rows = pd.DataFrame([learner(is_passed=passed, attempted_sections_avg_percent=grade, days_since_last_activity=1.0)
                         for grade, passed in ((10.0, False), (20.0, False), (30.0, True), (90.0, True))])
    assert rule_strengths(rows) == {"low_grade": pytest.approx(2 / 3), "inactivity": 0.0, "missed_deadlines": 0.0}


def test_a_score_no_better_than_chance_is_not_trusted_at_all():
    assert [reliability_from_auc(auc) for auc in (None, float("nan"), 0.3, 0.5, 0.9, 1.0)] == pytest.approx([0, 0, 0, 0, 0.8, 1.0])
    with pytest.raises(ValueError, match="ROC AUC must be between 0 and 1"):
        reliability_from_auc(1.2)


def test_a_prediction_without_features_is_refused_by_name():
    predictions = pd.DataFrame({"user_id": [1, 2], "snapshot_date": ["2026-11-22"] * 2, "fail_risk_score": [10.0, 90.0]})
    features = pd.DataFrame([{**learner(), "user_id": 1}])
    with pytest.raises(ValueError, match=r"1 learners have a prediction but no current features \(first: \[2\]\)"):
        course_fusion(predictions, pd.DataFrame(columns=["user_id", "score", "reliability"]), features, WEIGHTS)


def test_both_assets_materialize_on_a_trained_world_and_store_what_they_report(simulator, trained_copy, instance):
    resources = resources_for(simulator, trained_copy["url"], trained_copy["models"])
    defs = build_definitions(resources)
    course_id = trained_copy["running"][0]
    instance.add_dynamic_partitions("courses", [course_id])
    upstream = [key for key in defs.resolve_job_def("course_refresh").asset_layer.executable_asset_keys
                if key not in (engagement_anomalies.key, evidence_fusion.key)]
    assert {engagement_anomalies.key, evidence_fusion.key} < set(defs.resolve_job_def("course_refresh").asset_layer.executable_asset_keys)
    assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id, asset_selection=upstream).success
    result = dg.materialize([engagement_anomalies, evidence_fusion], instance=instance, partition_key=course_id, resources=resources)
    assert result.success
    anomalies = result.asset_materializations_for_node("engagement_anomalies")[0].metadata
    fusion = result.asset_materializations_for_node("evidence_fusion")[0].metadata
    engine = engine_for(trained_copy["url"])
    with engine.connect() as connection:
        stored = read_fusion(connection, course_id)
        latest = read_latest_predictions(connection, course_id)
        flagged = connection.execute(sa.select(sa.func.count()).select_from(schema.engagement_anomalies).where(
            schema.engagement_anomalies.c.course_id == course_id, schema.engagement_anomalies.c.is_flagged)).scalar()
    assert isinstance(anomalies["threshold"].value, float) and anomalies["flagged"].value == flagged
    assert stored["user_id"].tolist() == latest["user_id"].tolist()
    assert sum(fusion["categories"].value.values()) == len(stored) and fusion["yager_fallbacks"].value == (stored["rule"] == "yager").sum()
    assert (stored["belief"] <= stored["plausibility"] + 1e-12).all()
    assert np.allclose(stored["uncertainty"], stored["plausibility"] - stored["belief"])
    for row in stored.head(20).itertuples():  # what is stored is the fusion of the masses stored beside it
        again = fuse({name: Mass(**mass) for name, mass in row.sources.items()})
        assert (again.belief, again.conflict, again.rule, again.category) == (pytest.approx(row.belief), pytest.approx(row.conflict), row.rule, row.category)
    probability = latest.set_index("user_id")["fail_risk_score"] / 100
    model_mass = stored.set_index("user_id")["sources"].map(lambda sources: sources["model"]["at_risk"])
    assert np.allclose(model_mass, probability * fusion["weights"].value["model_reliability"])


def test_the_held_out_reports_compare_like_with_like_on_the_held_out_courses_only(trained_copy):
    engine = engine_for(trained_copy["url"])
    anomaly, fusion = anomaly_holdout_report(engine), fusion_holdout_report(engine)
    held_out = set(anomaly["held_out_courses"])
    with engine.connect() as connection:
        rows = pd.read_sql(sa.select(schema.training_data.c.course_id, schema.training_data.c.course_day, schema.training_data.c.is_dropout,
                                     schema.training_data.c.is_passed), connection)
    rows = rows[rows["course_id"].isin(held_out) & (rows["course_day"] % 7 == 0)]  # the week ends
    assert held_out and held_out.isdisjoint(anomaly["chosen_on"]["courses"]) and set(fusion["held_out_courses"]) == held_out
    assert anomaly["all_weeks"]["rows"] == len(rows) and anomaly["all_weeks"]["dropouts"] == rows["is_dropout"].sum()
    for scores in (fusion["all_weeks"], fusion["weeks_1_to_4"]):
        assert len({(s["n_samples"], s["n_positive"]) for s in scores.values()}) == 1  # the same rows for every score
    assert fusion["all_weeks"]["model_probability"]["n_positive"] == (~rows["is_passed"].astype(bool)).sum()
    assert sum(fusion["categories"].values()) == len(rows) and 0 <= fusion["yager"]["rows"] <= len(rows)
