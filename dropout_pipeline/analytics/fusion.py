"""Evidence fusion per learner: the model's calibrated fail risk, the engagement anomaly score
and three expert rules, each a mass function with its own uncertainty (analytics.evidence),
combined into belief, plausibility and uncertainty of being at risk.

How far each source is trusted is measured, never typed in: the model by the Gini
coefficient of its ROC AUC on courses it did not learn from (the registry's), the anomaly
score by its own on finished courses (analytics.anomalies), and a rule that fires by the
share of learners it fired on in finished courses who then failed. A rule that does not
fire says nothing (evidence.from_rule), nor does an anomaly score a course too small to have.

Whether the fusion adds anything to the model's probability alone is measured on the
model's held-out courses (`fusion_holdout_report`): ROC AUC and calibration of belief, and of
the pignistic probability (belief plus half the uncertainty, Smets' bet), beside the model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.analytics.anomalies import held_out_week_ends, read_threshold, scores_per_list
from dropout_pipeline.analytics.evidence import (
    CONFLICT_LIMIT,
    Mass,
    from_anomaly,
    from_probability,
    from_rule,
    fuse,
    reliability_from_auc,
    vacuous,
)
from dropout_pipeline.modeling.metrics import classification_metrics
from dropout_pipeline.modeling.retrain import THRESHOLD, evaluated_artifact
from dropout_pipeline.modeling.scorers import INACTIVE_DAYS_FOR_RULE, load_scorer, target_values
from dropout_pipeline.storage.analytics_tables import read_anomalies, read_finished_rows, read_latest_predictions, registered_model
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline.storage.model_tables import default_model, model_label

LOW_GRADE_BELOW_PERCENT: Final = 50.0
"""Low grade: a mean score under 50% on the graded sections attempted, the platform's pass mark: the
learner is failing the work already done. Not the course grade, which counts unattempted work as 0
and so is low for everyone early in a course."""

INACTIVE_AFTER_DAYS: Final = INACTIVE_DAYS_FOR_RULE
"""Inactivity: no activity for more than two weeks (the teacher's rule the models are judged against,
modeling.scorers), or never active after as long in the course."""

MISSED_DEADLINES_BELOW: Final = 0.5
"""Missed deadlines: fewer than half of the graded sections due by now attempted (the feature takes
due dates as spread evenly over the course weeks; undefined before the first is due)."""

RULES: Final = ("low_grade", "inactivity", "missed_deadlines")
RULE_INPUTS: Final = ("attempted_sections_avg_percent", "days_since_last_activity", "days_since_enrollment", "course_day",
                      "sections_attempted_vs_due")


def rules_fired(features: pd.DataFrame) -> pd.DataFrame:
    """Which rules fire for each learner (a rule whose input is undefined does not)."""
    value = {name: pd.to_numeric(features[name], errors="coerce") for name in RULE_INPUTS}
    days_in_course = np.minimum(value["days_since_enrollment"], value["course_day"])
    never_active = value["days_since_last_activity"].isna()
    return pd.DataFrame({
        "low_grade": value["attempted_sections_avg_percent"].lt(LOW_GRADE_BELOW_PERCENT),
        "inactivity": value["days_since_last_activity"].gt(INACTIVE_AFTER_DAYS) | (never_active & days_in_course.gt(INACTIVE_AFTER_DAYS)),
        "missed_deadlines": value["sections_attempted_vs_due"].lt(MISSED_DEADLINES_BELOW),
    }, index=features.index)


def rule_strengths(finished: pd.DataFrame) -> dict[str, float]:
    """Each rule's strength: of the finished courses' learners it fired on, the share who failed
    (0, saying nothing, when it never fired)."""
    fired, failed = rules_fired(finished), target_values(finished, "fail")
    return {name: float(failed[fired[name]].mean()) if fired[name].any() else 0.0 for name in RULES}


@dataclass(frozen=True)
class EvidenceWeights:
    model_reliability: float
    rule_strengths: Mapping[str, float]


def evidence_weights(connection: sa.Connection, model: dict, exclude_courses: tuple[str, ...] = ()) -> EvidenceWeights:
    """The model's reliability from its registered held-out ROC AUC; the rules' strengths from
    every finished course but `exclude_courses`."""
    finished = read_finished_rows(connection, [*RULE_INPUTS, "is_passed"])
    finished = finished[~finished["course_id"].isin(exclude_courses)]
    return EvidenceWeights(reliability_from_auc((model.get("metrics") or {}).get("roc_auc")), rule_strengths(finished))


def learner_sources(probability: float, anomaly_score: float | None, anomaly_reliability: float | None,
                    fired: Mapping[str, bool], weights: EvidenceWeights) -> dict[str, Mass]:
    """One learner's evidence as masses: the model's, the anomaly score's and each rule's."""
    no_anomaly = anomaly_score is None or not np.isfinite(anomaly_score) or anomaly_reliability is None
    return {
        "model": from_probability(probability, weights.model_reliability, source="model"),
        "anomaly": vacuous("anomaly") if no_anomaly else from_anomaly(float(anomaly_score), float(anomaly_reliability), source="anomaly"),
        **{name: from_rule(bool(fired[name]), weights.rule_strengths[name], source=name) for name in RULES},
    }


def fuse_learners(learners: pd.DataFrame, weights: EvidenceWeights, conflict_limit: float = CONFLICT_LIMIT) -> pd.DataFrame:
    """Belief, plausibility, uncertainty, conflict, rule, category and the sources' masses of each
    learner (`probability` 0-1, `anomaly_score`, `anomaly_reliability` and the rules' inputs), on its index."""
    fired = rules_fired(learners)
    out = []
    for index, probability, score, reliability in zip(learners.index, learners["probability"], learners["anomaly_score"],
                                                     learners["anomaly_reliability"], strict=True):
        reliability = None if pd.isna(reliability) else reliability
        sources = learner_sources(float(probability), None if pd.isna(score) else score, reliability, fired.loc[index], weights)
        fused = fuse(sources, conflict_limit)
        out.append({
            "belief": fused.belief, "plausibility": fused.plausibility, "uncertainty": fused.uncertainty, "conflict": fused.conflict,
            "rule": fused.rule, "category": fused.category,
            "sources": {name: {"at_risk": m.at_risk, "not_at_risk": m.not_at_risk, "either": m.either} for name, m in sources.items()},
        })
    return pd.DataFrame(out, index=learners.index, columns=["belief", "plausibility", "uncertainty", "conflict", "rule", "category", "sources"])


def course_fusion(predictions: pd.DataFrame, anomalies: pd.DataFrame, features: pd.DataFrame, weights: EvidenceWeights) -> pd.DataFrame:
    """One row per learner with a latest prediction: the fused evidence of the course's
    predictions (fail risk 0-100), anomalies (none stored: no anomaly evidence) and current features."""
    missing = sorted(set(predictions["user_id"]) - set(features["user_id"]))
    if missing:
        raise ValueError(f"{len(missing)} learners have a prediction but no current features (first: {missing[:5]}): refresh the course's features")
    learners = (
        predictions[["user_id", "snapshot_date", "fail_risk_score"]]
        .merge(anomalies[["user_id", "score", "reliability"]].rename(columns={"score": "anomaly_score", "reliability": "anomaly_reliability"}),
               on="user_id", how="left", validate="one_to_one")
        .merge(features[["user_id", *RULE_INPUTS]], on="user_id", how="left", validate="one_to_one")
        .assign(probability=lambda frame: frame["fail_risk_score"] / 100)
    )
    fused = fuse_learners(learners, weights)
    return pd.concat([learners[["user_id", "snapshot_date"]], fused], axis=1).sort_values("user_id", kind="mergesort").reset_index(drop=True)


@dataclass(frozen=True)
class CourseFusion:
    fused: pd.DataFrame  # course_fusion's rows; none when the course has no predictions yet
    model: dict | None  # the registry's row of the model behind the predictions
    weights: EvidenceWeights | None


def read_course_fusion(connection: sa.Connection, course_id: str) -> CourseFusion:
    """The fusion of a course's stored evidence: its latest predictions, anomalies and current
    features, weighted by the predictions' model and the finished courses. ValueError when the
    predictions cannot be traced to one registered model."""
    latest = read_latest_predictions(connection, course_id)
    if latest.empty:
        return CourseFusion(latest, None, None)
    models = latest[["model_name", "model_version"]].drop_duplicates()
    if len(models) != 1:
        raise ValueError(f"{course_id}'s latest predictions come from {len(models)} models: predict the course again")
    model = registered_model(connection, models["model_name"].iloc[0], models["model_version"].iloc[0])
    if model is None:
        raise ValueError(f"{course_id}'s latest predictions name a model the registry does not hold: {models.iloc[0].to_dict()}")
    weights = evidence_weights(connection, model)
    fused = course_fusion(latest, read_anomalies(connection, course_id), read_current_features(connection, course_id), weights)
    return CourseFusion(fused, model, weights)


def _scores_compared(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict:
    return {
        name: {key: metrics[key] for key in ("n_samples", "n_positive", "roc_auc", "calibration_error", "brier_score")}
        for name, metrics in ((name, classification_metrics(y, values, THRESHOLD)) for name, values in scores.items())
    }


def fusion_holdout_report(engine: sa.Engine) -> dict:
    """On the default fail-risk model's held-out courses (each week's last day, and those of weeks 1 to 4):
    ROC AUC, expected calibration error and Brier score against failing, with sample sizes, of
    belief, of the pignistic probability, and of the model's probability alone, with how often
    the conflict limit sent a learner to Yager's rule and the categories.

    The model's probabilities are its judged twin's (fitted without the held-out courses); the
    anomaly threshold and reliability and the rules' strengths are measured on the other
    finished courses. The model's reliability is the Gini of its registered held-out AUC, so
    that one number was measured on the courses evaluated here, as it is the one production uses.
    """
    with engine.connect() as connection:
        model = default_model(connection, "fail")
        if model is None:
            raise ValueError("no default fail-risk model: train one (the `nightly_retrain` job) before fusing its probabilities")
        held_out = tuple(model["holdout_courses"])
        weights = evidence_weights(connection, model, exclude_courses=held_out)
        threshold = read_threshold(connection, exclude_courses=held_out)
        rows = held_out_week_ends(connection, held_out)
    probability = load_scorer(evaluated_artifact(Path(model["model_path"]))).predict_proba(rows)
    learners = rows.assign(probability=probability, anomaly_score=scores_per_list(rows), anomaly_reliability=threshold.reliability)
    fused = fuse_learners(learners, weights)
    y = target_values(rows, "fail").to_numpy()
    belief, uncertainty = fused["belief"].to_numpy(float), fused["uncertainty"].to_numpy(float)
    scores = {"belief": belief, "pignistic": belief + uncertainty / 2, "model_probability": probability}
    early = rows["snapshot_week"].between(1, 4).to_numpy()
    return {
        "model": model_label(model),
        "held_out_courses": list(held_out),
        "weights": {"model_reliability": weights.model_reliability, "anomaly_reliability": threshold.reliability,
                    "rule_strengths": dict(weights.rule_strengths)},
        "all_weeks": _scores_compared(y, scores),
        "weeks_1_to_4": _scores_compared(y[early], {name: values[early] for name, values in scores.items()}),
        "yager": {"rows": int((fused["rule"] == "yager").sum()), "of": len(fused), "conflict_limit": CONFLICT_LIMIT},
        "categories": {name: int(count) for name, count in fused["category"].value_counts().sort_index().items()},
        "category_fail_rate": {name: float(y[(fused["category"] == name).to_numpy()].mean()) for name in sorted(fused["category"].unique())},
    }

