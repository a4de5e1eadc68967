"""Jobs: what the lifecycle sensor, the schedules, the CLI or a person in the UI launches."""

import dagster as dg

from dropout_pipeline.defs.analytics import ANALYTICS_ASSETS
from dropout_pipeline.defs.features import student_feature_history, student_features, training_data
from dropout_pipeline.defs.ingestion import INGESTION_ASSETS, course_catalog, enrollments
from dropout_pipeline.defs.models import dropout_risk_model, fail_risk_model
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.predictions import predictions
from dropout_pipeline.lifecycle.plan import FREEZE_JOB, REFRESH_JOB, REGISTER_JOB, RETRAIN_JOB

discover_courses_job = dg.define_asset_job(
    REGISTER_JOB, selection=[course_catalog], description="Store the platform's courses and register each as a partition."
)
course_refresh_job = dg.define_asset_job(
    REFRESH_JOB,
    selection=dg.AssetSelection.assets(*[a for a in INGESTION_ASSETS if a is not course_catalog], student_features, predictions, *ANALYTICS_ASSETS),
    partitions_def=courses_partitions,
    description="Pull a running course, rebuild its features, predict for every learner, flag unusual engagement and fuse the evidence.",
)
course_history_job = dg.define_asset_job(
    FREEZE_JOB,
    selection=[enrollments, student_feature_history, training_data],
    partitions_def=courses_partitions,
    description="Replay a finished course's history (days 1, 4 and 7 of every week) through `as_of` and freeze its training rows.",
)
nightly_retrain_job = dg.define_asset_job(
    RETRAIN_JOB, selection=[fail_risk_model, dropout_risk_model], description="Retrain, evaluate and gate the models."
)
