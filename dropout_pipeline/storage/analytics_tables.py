"""Writing and reading engagement_anomalies and evidence_fusion (a course's current rows,
replaced whole by each run), the anomaly thresholds chosen, and the rows they are measured on."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import frame_records, read_frame, replace_rows, upsert_row
from dropout_pipeline.storage.feature_tables import learnable


def _replace(connection: sa.Connection, table: sa.Table, course_id: str, rows: pd.DataFrame, computed_at: datetime) -> int:
    """The course's rows of `table` become `rows`, inside the caller's transaction: a failure
    rolls back to the previous rows, never half of each."""
    foreign = set(rows["course_id"]) - {course_id} if "course_id" in rows else set()
    if foreign:
        raise ValueError(f"{table.name}: rows of {sorted(foreign)} given to replace those of {course_id}")
    columns = [c.name for c in table.columns if c.name != "id"]
    records = frame_records(rows.assign(course_id=course_id, computed_at=computed_at), columns) if len(rows) else []
    return replace_rows(connection, table, {"course_id": course_id}, records)


def replace_anomalies(connection: sa.Connection, course_id: str, anomalies: pd.DataFrame, computed_at: datetime) -> int:
    return _replace(connection, schema.engagement_anomalies, course_id, anomalies, computed_at)


def replace_fusion(connection: sa.Connection, course_id: str, fusion: pd.DataFrame, computed_at: datetime) -> int:
    return _replace(connection, schema.evidence_fusion, course_id, fusion, computed_at)


def _read(connection: sa.Connection, table: sa.Table, course_id: str) -> pd.DataFrame:
    return read_frame(connection, sa.select(table).where(table.c.course_id == course_id).order_by(table.c.user_id))


def read_anomalies(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    return _read(connection, schema.engagement_anomalies, course_id)


def read_fusion(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    return _read(connection, schema.evidence_fusion, course_id)


def read_finished_rows(connection: sa.Connection, columns: list[str]) -> pd.DataFrame:
    """Some columns of the learnable training rows of every finished course (feature_tables.learnable),
    in key order: what thresholds and weights of evidence are measured on. Only the columns
    asked for are read: the whole table is some 100,000 rows of 70 columns."""
    table = schema.training_data
    key = [table.c.course_id, table.c.user_id, table.c.snapshot_date]
    query = sa.select(*key, *(table.c[name] for name in columns if name not in ("course_id", "user_id", "snapshot_date")))
    return read_frame(connection, query.where(learnable()).order_by(*key))


def count_finished_rows(connection: sa.Connection) -> int:
    """How many learnable training rows there are: training_data being insert-only, the count names the rows."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(schema.training_data).where(learnable())).scalar())


def read_latest_predictions(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    """The course's latest prediction of each learner, with the model that made it."""
    p = schema.predictions
    query = sa.select(p.c.user_id, p.c.snapshot_date, p.c.fail_risk_score, p.c.model_name, p.c.model_version).where(
        p.c.course_id == course_id, p.c.is_latest == sa.true()
    )
    return read_frame(connection, query.order_by(p.c.user_id))


def registered_model(connection: sa.Connection, model_name: str, model_version: int) -> dict | None:
    registry = schema.model_registry
    query = sa.select(registry).where(registry.c.model_name == model_name, registry.c.model_version == int(model_version))
    row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def read_anomaly_threshold(connection: sa.Connection, training_rows: int) -> dict | None:
    """The threshold chosen when training_data held `training_rows` learnable rows, if one was."""
    table = schema.anomaly_thresholds
    row = connection.execute(sa.select(table).where(table.c.training_rows == training_rows)).mappings().first()
    return dict(row) if row else None


def store_anomaly_threshold(connection: sa.Connection, row: dict) -> None:
    """Keep a threshold chosen (two runs choosing the same one at once both succeed)."""
    upsert_row(connection, schema.anomaly_thresholds, row)
