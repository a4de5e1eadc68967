"""Predictions: every learner of a course scored by the course's model, appended to history."""

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import dagster as dg

from dropout_pipeline.dagster_metadata import preview
from dropout_pipeline.defs.features import student_features
from dropout_pipeline.defs.models import dropout_risk_model, fail_risk_model
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import DatabaseResource, PipelineSettings
from dropout_pipeline.modeling.scorers import CatBoostScorer
from dropout_pipeline.predictions.score import RiskLevels, score_learners
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline.storage.model_tables import default_model, model_for_course
from dropout_pipeline.storage.prediction_tables import append_predictions


@lru_cache(maxsize=16)
def _load_model(path: str) -> CatBoostScorer:
    return CatBoostScorer.load(Path(path))


@dg.asset(partitions_def=courses_partitions, group_name="predictions", kinds={"sql", "catboost"}, deps=[student_features, fail_risk_model, dropout_risk_model])
def predictions(context: dg.AssetExecutionContext, database: DatabaseResource, settings: PipelineSettings) -> dg.MaterializeResult:
    """Fail risk 0-100 (and dropout risk) for every learner of the course, with the three
    reasons that raise it most, from the course's mapped model or else the default.
    Appended: earlier predictions stay as history, the new ones become `is_latest`."""
    course_id = context.partition_key
    with database.engine().connect() as connection:
        features = read_current_features(connection, course_id)
        fail_model = model_for_course(connection, course_id, "fail")
        dropout_model = default_model(connection, "dropout")
    if features.empty:
        raise dg.Failure(f"no student_features for {course_id}: materialize them first")
    if fail_model is None:
        raise dg.Failure("no fail-risk model is registered yet: run the `nightly_retrain` job once finished courses have training data")
    scored = score_learners(
        features,
        _load_model(fail_model["model_path"]),
        _load_model(dropout_model["model_path"]) if dropout_model else None,
        RiskLevels(settings.high_risk_from, settings.medium_risk_from),
    )
    with database.engine().begin() as connection:
        count = append_predictions(connection, course_id, scored, fail_model, datetime.now(timezone.utc).replace(tzinfo=None))
    levels = scored["risk_level"].value_counts().to_dict()
    top = scored.sort_values("fail_risk_score", ascending=False).head(5)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(count),
            "model": dg.MetadataValue.text(f"{fail_model['model_name']} v{fail_model['model_version']}"),
            "risk_levels": dg.MetadataValue.json({level: int(levels.get(level, 0)) for level in ("HIGH", "MEDIUM", "LOW")}),
            "mean_fail_risk": dg.MetadataValue.float(round(float(scored["fail_risk_score"].mean()), 2)),
            "most_at_risk": preview(top.assign(reasons=top["reasons"].map(lambda rs: "; ".join(r["text"] for r in rs)))),
        }
    )
