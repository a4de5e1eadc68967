"""The code location: every asset, check, job, schedule, sensor and resource, assembled here.

`dagster dev` loads `defs` through workspace.yaml; the demo and tests call
`build_definitions` with resources of their own (a simulator, a test database).
"""

import dagster as dg

from dropout_pipeline.defs.analytics import ANALYTICS_ASSETS
from dropout_pipeline.defs.features import FEATURE_ASSETS
from dropout_pipeline.defs.ingestion import INGESTION_ASSETS
from dropout_pipeline.defs.jobs import course_history_job, course_refresh_job, discover_courses_job, nightly_retrain_job
from dropout_pipeline.defs.legacy import LEGACY_ASSETS, legacy_import_job
from dropout_pipeline.defs.models import MODEL_ASSETS, train_domain_model_job
from dropout_pipeline.defs.predictions import predictions
from dropout_pipeline.defs.resources import build_resources
from dropout_pipeline.defs.schedules import nightly_retrain_schedule
from dropout_pipeline.defs.sensors import course_lifecycle_sensor, run_failure_alert_sensor


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=[*INGESTION_ASSETS, *FEATURE_ASSETS, *MODEL_ASSETS, predictions, *ANALYTICS_ASSETS, *LEGACY_ASSETS],
        jobs=[discover_courses_job, course_refresh_job, course_history_job, nightly_retrain_job, train_domain_model_job, legacy_import_job],
        schedules=[nightly_retrain_schedule],
        sensors=[course_lifecycle_sensor, run_failure_alert_sensor],
        resources=resources if resources is not None else build_resources(),
        # Steps run in the run's own process: a process per step costs ~4 s of imports on
        # a 2-core machine, more than most steps take (a course refresh: 35 s -> 5 s).
        # Parallelism comes from runs (up to 4 at once, dagster.yaml), one per course.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
