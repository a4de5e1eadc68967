"""Scoring a course's learners: risk scores 0-100, risk levels and reasons (risk factors, or
for a learner at LOW what keeps the score low)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dropout_pipeline.modeling.scorers import Scorer
from dropout_pipeline.predictions.reasons import top_reasons

SCORE_DECIMALS = 6


@dataclass(frozen=True)
class RiskLevels:
    """HIGH from 70 as in the legacy system; MEDIUM from 40."""

    high_from: float = 70.0
    medium_from: float = 40.0

    def of(self, scores: np.ndarray) -> np.ndarray:
        return np.where(scores >= self.high_from, "HIGH", np.where(scores >= self.medium_from, "MEDIUM", "LOW"))


def score_learners(features: pd.DataFrame, fail_model: Scorer, dropout_model: Scorer | None, levels: RiskLevels) -> pd.DataFrame:
    """One prediction row per learner (without model names or timestamps); none for a
    course nobody has enrolled in yet."""
    if features.empty:
        return _prediction_rows(features, np.empty(0), np.empty(0), levels, [], [])
    fail = _score(fail_model, features)
    fail_reasons = _reasons(features, fail_model, levels.of(fail) == "LOW")
    if dropout_model is None:
        dropout, dropout_reasons = np.full(len(features), np.nan), [None] * len(features)
    else:
        dropout = _score(dropout_model, features)
        dropout_reasons = _reasons(features, dropout_model, levels.of(dropout) == "LOW")
    return _prediction_rows(features, fail, dropout, levels, fail_reasons, dropout_reasons)


def _score(model: Scorer, features: pd.DataFrame) -> np.ndarray:
    """The calibrated probability x 100, kept fine enough that the top of a list still
    ranks (learners at 99.996 and 99.991 are not tied at a rounded 100.0)."""
    return np.round(100 * model.predict_proba(features), SCORE_DECIMALS)


def _reasons(features: pd.DataFrame, model: Scorer, at_low: np.ndarray) -> list[list[dict]]:
    """Risk factors, or for a learner whose score is LOW (each score by its own level: a low
    dropout risk beside a high fail risk is still low) what keeps it low."""
    return top_reasons(features, model.features, model.contributions(features), at_low)


def _prediction_rows(
    features: pd.DataFrame, fail: np.ndarray, dropout: np.ndarray, levels: RiskLevels, fail_reasons: list, dropout_reasons: list
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": features["user_id"].to_numpy(),
            "course_id": features["course_id"].to_numpy(),
            "fail_risk_score": fail,
            "dropout_risk_score": dropout,
            "risk_level": levels.of(fail),
            "snapshot_date": features["snapshot_date"].to_numpy(),
            "snapshot_grade": features["mooc_grade_percentage"].to_numpy(),
            "snapshot_completion_rate": features["mooc_completion_rate"].to_numpy(),
            "reasons": fail_reasons,
            "dropout_reasons": dropout_reasons,
        }
    )
