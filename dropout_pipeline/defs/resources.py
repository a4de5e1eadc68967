"""Resources, and the only place configuration is read from the environment.

Secrets (`MOOC_API_SESSIONID`, `H5P_API_TOKEN`, `DROPOUT_ALERT_WEBHOOK_URL`) always
come through `dg.EnvVar`, so the Dagster UI shows the variable's name, never its value,
and they are resolved only when a run starts. Settings with a default use the variable
when it is set, else the default. The time zone and the sensor interval shape the
definitions themselves (cron times, tick interval), so they are read when the code
location loads.
"""


import dataclasses
import os
from datetime import date
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.clock import Clock
from dropout_pipeline.features.calendar import scored_day
from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.storage.database import DEFAULT_DATA_DIR, default_database_url, engine_for

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_SENSOR_INTERVAL_SECONDS = 60


# Settings of earlier releases: set, they would be silently ignored, so they are refused.
RENAMED_SETTINGS = {"RETRAIN_TIMEZONE": "DROPOUT_TIMEZONE", "SOURCE_API_AS_OF": "DROPOUT_TODAY"}


def refuse_renamed_settings() -> None:
    found = [f"{old} is now {new}" for old, new in RENAMED_SETTINGS.items() if old in os.environ]
    if found:
        raise ValueError(f"renamed settings in the environment: {'; '.join(found)} (see the README's configuration table)")


def product_timezone() -> str:
    """The platform's time zone: course dates, 'today', the 02:00 retrain and 06:00 refreshes."""
    refuse_renamed_settings()
    return os.environ.get("DROPOUT_TIMEZONE", DEFAULT_TIMEZONE)


def database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The product's database: DROPOUT_DB_URL, else the SQLite file in the data folder."""
    return os.environ.get("DROPOUT_DB_URL") or default_database_url(data_dir)


def sensor_interval_seconds() -> int:
    """How often the lifecycle sensor looks at the catalogue: the new-course latency's main part."""
    return int(os.environ.get("COURSE_SENSOR_INTERVAL_SECONDS", str(DEFAULT_SENSOR_INTERVAL_SECONDS)))


class DatabaseResource(dg.ConfigurableResource):
    """The product's database (not Dagster's own storage). Migrated on first use."""

    url: str | None = None

    def engine(self) -> sa.Engine:
        return engine_for(self.url or default_database_url())


class SourceApiResource(dg.ConfigurableResource):
    """The platform's MOOC and H5P APIs (docs/source-api.md)."""

    mooc_url: str
    mooc_session_id: str
    h5p_url: str
    h5p_token: str
    concurrency: int = 16
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0

    def client_settings(self) -> ClientSettings:
        """The client's settings: every ClientSettings field this resource configures."""
        shared = {f.name for f in dataclasses.fields(ClientSettings)} & set(type(self).model_fields)
        return ClientSettings(**{name: getattr(self, name) for name in shared})


class ClockResource(dg.ConfigurableResource):
    """The one clock of the product (see dropout_pipeline.clock)."""

    today: str | None = None  # YYYY-MM-DD (or YYYY-MM-DDTHH:MM) pins the clock; None: real time
    timezone: str = DEFAULT_TIMEZONE

    def clock(self) -> Clock:
        return Clock.pinned_at(self.timezone, self.today)

    def as_of(self) -> date | None:
        """The date the catalogue is asked for (which courses exist): the pinned date, or None
        for the platform's present."""
        return self.clock().pinned_day

    def scored_day(self) -> date:
        """The snapshot date of a refresh today, and the `as_of` its pulls of a course's data ask
        for: yesterday, the last day that has ended (features.calendar.scored_day)."""
        return scored_day(self.clock().today())


class PipelineSettings(dg.ConfigurableResource):
    """Tuning of features, training and predictions; defaults follow the legacy system."""

    dropout_inactive_days: int = 30
    models_dir: str = "data/models"
    auc_floor: float = 0.70
    champion_margin: float = 0.02
    high_risk_from: float = 70.0
    medium_risk_from: float = 40.0
    # Days a finished course waits before its labels are frozen, so grades given late
    # (staff- and peer-graded work, regrades) reach them; the README says why 7.
    freeze_grace_days: int = 7

    def models_path(self) -> Path:
        return Path(self.models_dir)


class AlertWebhookResource(dg.ConfigurableResource):
    """Where failed runs are reported (a Slack/Teams/Mattermost-style incoming webhook).

    The URL usually carries a secret, so it is never logged or shown.
    """

    url: str | None = None


def _env_or(name: str, default, kind: type = str):
    """`dg.EnvVar(name)` when the variable is set, else the default.

    Floats are read directly: `dg.EnvVar` has no float form.
    """
    if name not in os.environ:
        return default
    if kind is float:
        return float(os.environ[name])
    return dg.EnvVar.int(name) if kind is int else dg.EnvVar(name)


def build_resources(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment; what is not set lives in `data_dir` (as `database_url`)."""
    return {
        "database": DatabaseResource(url=_env_or("DROPOUT_DB_URL", default_database_url(data_dir))),
        "source_api": SourceApiResource(
            mooc_url=dg.EnvVar("MOOC_API_URL"),
            mooc_session_id=dg.EnvVar("MOOC_API_SESSIONID"),
            h5p_url=dg.EnvVar("H5P_API_URL"),
            h5p_token=dg.EnvVar("H5P_API_TOKEN"),
            concurrency=_env_or("SOURCE_API_CONCURRENCY", 16, int),
            timeout_seconds=_env_or("SOURCE_API_TIMEOUT_SECONDS", 30.0, float),
            max_retries=_env_or("SOURCE_API_MAX_RETRIES", 5, int),
        ),
        "clock": ClockResource(today=os.environ.get("DROPOUT_TODAY"), timezone=product_timezone()),
        "settings": PipelineSettings(
            dropout_inactive_days=_env_or("DROPOUT_INACTIVE_DAYS", 30, int),
            models_dir=_env_or("DROPOUT_MODELS_DIR", str(data_dir / "models")),
            auc_floor=_env_or("DROPOUT_AUC_FLOOR", 0.70, float),
            freeze_grace_days=_env_or("DROPOUT_FREEZE_GRACE_DAYS", 7, int),
        ),
        "alert_webhook": AlertWebhookResource(url=_env_or("DROPOUT_ALERT_WEBHOOK_URL", None)),
    }
