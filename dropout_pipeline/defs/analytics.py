"""Analytics beside the risk scores: engagement anomalies and the evidence fused with them."""

import dagster as dg

from dropout_pipeline.analytics.anomalies import course_anomalies, current_threshold
from dropout_pipeline.analytics.evidence import CATEGORIES, CONFLICT_LIMIT
from dropout_pipeline.analytics.fusion import read_course_fusion
from dropout_pipeline.clock import utc_now
from dropout_pipeline.dagster_metadata import preview
from dropout_pipeline.defs.features import student_features
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.predictions import predictions
from dropout_pipeline.defs.resources import DatabaseResource
from dropout_pipeline.storage.analytics_tables import replace_anomalies, replace_fusion
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline.storage.model_tables import model_label

GROUP = "analytics"


@dg.asset(partitions_def=courses_partitions, group_name=GROUP, kinds={"sql", "scikit-learn"}, deps=[student_features])
def engagement_anomalies(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    """How unusual each learner's engagement is among the class today (Isolation Forest, 0 to 1),
    flagged above the threshold chosen on finished courses against later dropout. With no
    finished course to choose it from, every learner is scored and nobody is flagged."""
    course_id = context.partition_key
    with database.engine().connect() as connection:
        features = read_current_features(connection, course_id)
    now = utc_now()
    threshold = current_threshold(database.engine(), now)
    anomalies = course_anomalies(features, threshold)
    with database.engine().begin() as connection:
        replace_anomalies(connection, course_id, anomalies, now)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(anomalies)),
            "scored": dg.MetadataValue.int(int(anomalies["score"].notna().sum())),
            "flagged": dg.MetadataValue.int(int(anomalies["is_flagged"].sum())),
            "threshold": dg.MetadataValue.float(threshold.threshold) if threshold.threshold is not None else dg.MetadataValue.text("none"),
            "threshold_rule": dg.MetadataValue.text(threshold.note),
            "reliability": dg.MetadataValue.float(round(threshold.reliability, 4)),
            "chosen_on_courses": dg.MetadataValue.int(len(threshold.courses)),
            "most_unusual": preview(anomalies.sort_values("score", ascending=False).drop(columns="features")),
        }
    )


@dg.asset(partitions_def=courses_partitions, group_name=GROUP, kinds={"sql"}, deps=[predictions, engagement_anomalies])
def evidence_fusion(context: dg.AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    """Each learner's latest fail risk, engagement anomaly and expert rules (low grade,
    inactivity, missed deadlines) fused by Dempster's rule into belief, plausibility and
    uncertainty of being at risk, and a category (Low / Moderate / High / Extreme Risk by
    belief); by Yager's rule where the sources conflict beyond the limit."""
    course_id = context.partition_key
    try:
        with database.engine().connect() as connection:
            fusion = read_course_fusion(connection, course_id)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    fused, model, weights = fusion.fused, fusion.model, fusion.weights
    with database.engine().begin() as connection:
        replace_fusion(connection, course_id, fused, utc_now())
    if model is None:  # no learner predicted yet: nothing fused, and nothing left from before
        return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(0),
                                              "note": dg.MetadataValue.text(f"{course_id} has no predictions to fuse")})
    counts = fused["category"].value_counts()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(fused)),
            "categories": dg.MetadataValue.json({name: int(counts.get(name, 0)) for name in CATEGORIES}),
            "yager_fallbacks": dg.MetadataValue.int(int((fused["rule"] == "yager").sum())),
            "conflict_limit": dg.MetadataValue.float(CONFLICT_LIMIT),
            "mean_belief": dg.MetadataValue.float(round(float(fused["belief"].mean()), 4)),
            "mean_uncertainty": dg.MetadataValue.float(round(float(fused["uncertainty"].mean()), 4)),
            "model": dg.MetadataValue.text(model_label(model)),
            "weights": dg.MetadataValue.json({"model_reliability": weights.model_reliability, "rule_strengths": dict(weights.rule_strengths)}),
            "most_at_risk": preview(fused.sort_values("belief", ascending=False).drop(columns="sources")),
        }
    )


ANALYTICS_ASSETS = [engagement_anomalies, evidence_fusion]
