"""Predictions: every learner of a course scored by the course's model, appended to history."""

import dagster as dg

from dropout_pipeline.dagster_metadata import preview
from dropout_pipeline.defs.features import student_features
from dropout_pipeline.defs.models import dropout_risk_model, fail_risk_model
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import DatabaseResource, PipelineSettings
from dropout_pipeline.predictions.run import PredictionError, predict_course
from dropout_pipeline.predictions.score import RiskLevels
from dropout_pipeline.storage.model_tables import model_label


@dg.asset(partitions_def=courses_partitions, group_name="predictions", kinds={"sql", "catboost"}, deps=[student_features, fail_risk_model, dropout_risk_model])
def predictions(context: dg.AssetExecutionContext, database: DatabaseResource, settings: PipelineSettings) -> dg.MaterializeResult:
    """Fail risk 0-100 (and dropout risk) for every learner of the course, with the three
    reasons that raise it most, from the course's mapped model or else the default.
    Appended: earlier predictions stay as history, the new ones become `is_latest`."""
    try:
        run = predict_course(database.engine(), context.partition_key, RiskLevels(settings.high_risk_from, settings.medium_risk_from))
    except PredictionError as error:
        raise dg.Failure(str(error)) from None
    scored, model = run.scored, run.model
    levels = scored["risk_level"].value_counts().to_dict()
    top = scored.sort_values("fail_risk_score", ascending=False).head(5)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(scored)),
            "model": dg.MetadataValue.text(model_label(model)),
            "risk_levels": dg.MetadataValue.json({level: int(levels.get(level, 0)) for level in ("HIGH", "MEDIUM", "LOW")}),
            "mean_fail_risk": dg.MetadataValue.float(round(float(scored["fail_risk_score"].mean()), 2) if len(scored) else 0.0),
            "most_at_risk": preview(top.assign(reasons=top["reasons"].map(lambda rs: "; ".join(r["text"] for r in rs)))),
        }
    )
