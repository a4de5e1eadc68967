"""Append-only prediction history with exactly one latest row per learner and course."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, frame_records


def append_predictions(connection: sa.Connection, course_id: str, scored: pd.DataFrame, model: dict, predicted_at: datetime) -> int:
    """Add a prediction run for a course inside the caller's transaction.

    Earlier rows are kept (history); only their `is_latest` flag is cleared. Runs for
    one course are serialised by locking the course's row first (PostgreSQL and
    MariaDB; SQLite has a single writer anyway), and the database's one-latest
    unique index makes any run that slipped past the lock fail rather than duplicate.
    """
    courses, predictions = schema.courses, schema.predictions
    connection.execute(sa.select(courses.c.course_id).where(courses.c.course_id == course_id).with_for_update())
    connection.execute(
        predictions.update().where(predictions.c.course_id == course_id, predictions.c.is_latest.is_(True)).values(is_latest=False)
    )
    frame = scored.assign(model_name=model["model_name"], model_version=model["model_version"], predicted_at=predicted_at, is_latest=True)
    return bulk_insert(connection, predictions, frame_records(frame, [c.name for c in predictions.columns if c.name != "id"]))
