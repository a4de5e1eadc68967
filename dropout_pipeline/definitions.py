"""The code location: every asset, check, job, schedule, sensor and resource, assembled here."""

import dagster as dg

from dropout_pipeline.defs.features import FEATURE_ASSETS
from dropout_pipeline.defs.ingestion import INGESTION_ASSETS
from dropout_pipeline.defs.resources import build_resources

defs = dg.Definitions(
    assets=[*INGESTION_ASSETS, *FEATURE_ASSETS],
    resources=build_resources(),
)
