"""Predicting one course end to end: features in, scored learners appended to history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.modeling.scorers import Scorer, load_scorer
from dropout_pipeline.predictions.score import RiskLevels, score_learners
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline.storage.model_tables import default_model, model_for_course
from dropout_pipeline.storage.prediction_tables import append_predictions


class PredictionError(RuntimeError):
    """The course cannot be predicted yet (no features, or no model)."""


@dataclass
class CoursePrediction:
    model: dict
    scored: pd.DataFrame


@lru_cache(maxsize=16)
def load_model(path: str) -> Scorer:
    return load_scorer(Path(path))


def predict_course(engine: sa.Engine, course_id: str, levels: RiskLevels) -> CoursePrediction:
    """Score every learner of the course with its mapped model (else the default) and append."""
    with engine.connect() as connection:
        features = read_current_features(connection, course_id)
        fail_model = model_for_course(connection, course_id, "fail")
        dropout_model = default_model(connection, "dropout")
    if fail_model is None:
        raise PredictionError("no fail-risk model is registered yet: run the `nightly_retrain` job once finished courses have training data")
    scored = score_learners(
        features,
        load_model(fail_model["model_path"]),
        load_model(dropout_model["model_path"]) if dropout_model else None,
        levels,
    )
    with engine.begin() as connection:
        append_predictions(connection, course_id, scored, fail_model, datetime.now(timezone.utc).replace(tzinfo=None))
    return CoursePrediction(fail_model, scored)
