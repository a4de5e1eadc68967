"""Jobs: what a schedule, a sensor or a person in the UI launches."""

import dagster as dg

from dropout_pipeline.defs.features import student_feature_history, student_features, training_data
from dropout_pipeline.defs.ingestion import INGESTION_ASSETS, course_catalog, enrollments
from dropout_pipeline.defs.models import dropout_risk_model, fail_risk_model
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.predictions import predictions

discover_courses_job = dg.define_asset_job(
    "discover_courses", selection=[course_catalog], description="Register the platform's courses as partitions."
)
course_refresh_job = dg.define_asset_job(
    "course_refresh",
    selection=dg.AssetSelection.assets(*[a for a in INGESTION_ASSETS if a is not course_catalog], student_features, predictions),
    partitions_def=courses_partitions,
    description="Pull a course, rebuild its features, and predict for every learner.",
)
course_history_job = dg.define_asset_job(
    "course_history",
    selection=[enrollments, student_feature_history, training_data],
    partitions_def=courses_partitions,
    description="Replay a course's weekly history through `as_of` and freeze its training rows once finished.",
)
nightly_retrain_job = dg.define_asset_job(
    "nightly_retrain", selection=[fail_risk_model, dropout_risk_model], description="Retrain, evaluate and gate the models."
)
