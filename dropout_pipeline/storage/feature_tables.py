"""Writing and reading student_features, its weekly history, and training_data."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.features.build import enforce_feature_types
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, frame_records, read_frame, replace_rows


def replace_current_features(connection: sa.Connection, course_id: str, features: pd.DataFrame, updated_at: datetime) -> int:
    """The course's rows of student_features become `features` (one row per learner)."""
    rows = frame_records(features.assign(updated_at=updated_at), [c.name for c in schema.student_features.columns if c.name != "id"])
    return replace_rows(connection, schema.student_features, {"course_id": course_id}, rows)


def replace_snapshot(
    connection: sa.Connection, table: sa.Table, course_id: str, features: pd.DataFrame, snapshot_week: int, recorded_at: datetime
) -> int:
    """Record one day's snapshot in `table` (the weekly history or the daily record); a
    rerun for the same date replaces it, never duplicates."""
    snapshot_date = features["snapshot_date"].iloc[0] if len(features) else None
    frame = features.assign(snapshot_week=snapshot_week, recorded_at=recorded_at)
    rows = frame_records(frame, [c.name for c in table.columns if c.name != "id"])
    return replace_rows(connection, table, {"course_id": course_id, "snapshot_date": snapshot_date}, rows)


def _read(connection: sa.Connection, table: sa.Table, course_id: str) -> pd.DataFrame:
    frame = read_frame(connection, sa.select(table).where(table.c.course_id == course_id))
    return enforce_feature_types(frame) if len(frame) else frame


def read_current_features(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    return _read(connection, schema.student_features, course_id)


def read_history(connection: sa.Connection, course_id: str) -> pd.DataFrame:
    return _read(connection, schema.student_features_history, course_id)


def insert_new_training_rows(connection: sa.Connection, rows: pd.DataFrame) -> int:
    """Insert the rows whose (learner, course, snapshot date) is not frozen yet; never touch the rest."""
    if rows.empty:
        return 0
    table = schema.training_data
    course_ids = rows["course_id"].unique().tolist()
    existing = connection.execute(
        sa.select(table.c.user_id, table.c.course_id, table.c.snapshot_date).where(table.c.course_id.in_(course_ids))
    ).all()
    key = ["user_id", "course_id", "snapshot_date"]
    known = pd.DataFrame(existing, columns=key).assign(_known=True)
    known["snapshot_date"] = pd.to_datetime(known["snapshot_date"]).dt.date
    fresh = rows.assign(snapshot_date=pd.to_datetime(rows["snapshot_date"]).dt.date).merge(known, on=key, how="left")
    fresh = fresh[fresh["_known"].isna()].drop(columns="_known")
    # A column the rows do not carry takes its server default (snapshot_kind: 'weekly').
    columns = [c.name for c in table.columns if c.name != "id" and (c.name in fresh.columns or c.server_default is None)]
    return bulk_insert(connection, table, frame_records(fresh, columns))


def learnable() -> sa.ColumnElement[bool]:
    """The training rows a model may learn from: weekly snapshots frozen since migration
    0006. Rows frozen before it lack the recent-behaviour features (NULL, and immutable):
    read as zeros they would describe learners who did nothing, so they stay out. Rows
    imported from a legacy V1 database (snapshot_kind 'end_of_course', migration 0008)
    describe the end of the semester: an early-week model learning from them would learn
    from what is only known at the end (label leakage), so they stay out too; they are
    read for evaluation by read_end_of_course_rows."""
    table = schema.training_data
    return sa.and_(table.c.course_day.is_not(None), table.c.snapshot_kind == "weekly")


def read_end_of_course_rows(connection: sa.Connection, course_ids: list[str] | None = None) -> pd.DataFrame:
    """The end-of-course rows imported from legacy V1: never learnable, for evaluation and
    for models that predict at the end of a course."""
    table = schema.training_data
    query = sa.select(table).where(table.c.snapshot_kind == "end_of_course")
    if course_ids is not None:
        query = query.where(table.c.course_id.in_(course_ids))
    return read_frame(connection, query)


def read_training_data(connection: sa.Connection, course_ids: list[str] | None = None) -> pd.DataFrame:
    """The learnable training rows (see learnable), of some courses or all."""
    table = schema.training_data
    query = sa.select(table).where(learnable())
    if course_ids is not None:
        query = query.where(table.c.course_id.in_(course_ids))
    frame = read_frame(connection, query)
    if frame.empty:
        return frame
    frame = enforce_feature_types(frame)
    for label in ("is_passed", "is_dropout"):
        frame[label] = frame[label].astype(bool)
    return frame
