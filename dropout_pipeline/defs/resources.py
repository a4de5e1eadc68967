"""Resources, and the only place configuration is read from the environment.

Secrets (`MOOC_API_SESSIONID`, `H5P_API_TOKEN`) always come through `dg.EnvVar`, so the
Dagster UI shows the variable's name, never its value, and they are resolved only when
a run starts. Settings with a default use the variable when it is set, else the default.
"""


import dataclasses
import os
from datetime import date
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.storage.database import default_database_url, engine_for


class DatabaseResource(dg.ConfigurableResource):
    """The product's database (not Dagster's own storage). Migrated on first use."""

    url: str | None = None

    def engine(self) -> sa.Engine:
        return engine_for(self.url or default_database_url())


class SourceApiResource(dg.ConfigurableResource):
    """The platform's MOOC and H5P APIs (../shared/specs/source-api.md)."""

    mooc_url: str
    mooc_session_id: str
    h5p_url: str
    h5p_token: str
    concurrency: int = 16
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    as_of: str | None = None  # YYYY-MM-DD: pull the state at that date (replay); None: live

    def client_settings(self) -> ClientSettings:
        """The client's settings: every ClientSettings field this resource configures."""
        shared = {f.name for f in dataclasses.fields(ClientSettings)} & set(type(self).model_fields)
        return ClientSettings(**{name: getattr(self, name) for name in shared})

    def as_of_date(self) -> date | None:
        return date.fromisoformat(self.as_of) if self.as_of else None

    def snapshot_date(self) -> date:
        """The date the data describes: the replay date, or today."""
        return self.as_of_date() or date.today()


class PipelineSettings(dg.ConfigurableResource):
    """Tuning of features, training and predictions; defaults follow the legacy system."""

    dropout_inactive_days: int = 30
    models_dir: str = "data/models"
    auc_floor: float = 0.70
    champion_margin: float = 0.02
    high_risk_from: float = 70.0
    medium_risk_from: float = 40.0

    def models_path(self) -> Path:
        return Path(self.models_dir)


def _env_or(name: str, default, kind: type = str):
    """`dg.EnvVar(name)` when the variable is set, else the default.

    Floats are read directly: `dg.EnvVar` has no float form.
    """
    if name not in os.environ:
        return default
    if kind is float:
        return float(os.environ[name])
    return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "database": DatabaseResource(url=_env_or("DROPOUT_DB_URL", None)),
        "source_api": SourceApiResource(
            mooc_url=dg.EnvVar("MOOC_API_URL"),
            mooc_session_id=dg.EnvVar("MOOC_API_SESSIONID"),
            h5p_url=dg.EnvVar("H5P_API_URL"),
            h5p_token=dg.EnvVar("H5P_API_TOKEN"),
            concurrency=_env_or("SOURCE_API_CONCURRENCY", 16, int),
            timeout_seconds=_env_or("SOURCE_API_TIMEOUT_SECONDS", 30.0, float),
            max_retries=_env_or("SOURCE_API_MAX_RETRIES", 5, int),
            as_of=_env_or("SOURCE_API_AS_OF", None),
        ),
        "settings": PipelineSettings(
            dropout_inactive_days=_env_or("DROPOUT_INACTIVE_DAYS", 30, int),
            models_dir=_env_or("DROPOUT_MODELS_DIR", "data/models"),
            auc_floor=_env_or("DROPOUT_AUC_FLOOR", 0.70, float),
        ),
    }
