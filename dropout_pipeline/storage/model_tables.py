"""model_registry, model_performance, course_model_mapping and training-data usage."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, upsert_row

registry = schema.model_registry


def model_label(model: dict | None) -> str | None:
    """How a model is named to people: "fail_risk_model v3"."""
    return f"{model['model_name']} v{model['model_version']}" if model else None


def next_version(connection: sa.Connection, model_name: str) -> int:
    """Monotonic per model name; the registry's unique key makes a race fail, not duplicate."""
    current = connection.execute(sa.select(sa.func.max(registry.c.model_version)).where(registry.c.model_name == model_name)).scalar()
    return (current or 0) + 1


def register_model(connection: sa.Connection, row: dict) -> None:
    connection.execute(registry.insert(), [row])


def default_model(connection: sa.Connection, target: str) -> dict | None:
    query = sa.select(registry).where(registry.c.target == target, registry.c.is_default.is_(True))
    row = connection.execute(query.order_by(registry.c.model_version.desc())).mappings().first()
    return dict(row) if row else None


def latest_active(connection: sa.Connection, model_name: str) -> dict | None:
    query = sa.select(registry).where(registry.c.model_name == model_name, registry.c.is_active.is_(True))
    row = connection.execute(query.order_by(registry.c.model_version.desc())).mappings().first()
    return dict(row) if row else None


def promote_to_default(connection: sa.Connection, model_name: str, model_version: int, target: str) -> None:
    """The one default model of a target becomes this version (champion/challenger)."""
    connection.execute(registry.update().where(registry.c.target == target, registry.c.is_default.is_(True)).values(is_default=False))
    connection.execute(
        registry.update().where(registry.c.model_name == model_name, registry.c.model_version == model_version).values(is_default=True)
    )


def record_performance(connection: sa.Connection, rows: Iterable[dict]) -> None:
    rows = list(rows)
    if rows:
        connection.execute(schema.model_performance.insert(), rows)


def mark_training_rows_used(connection: sa.Connection, training_ids: Iterable[int], model_name: str, model_version: int, used_at: datetime) -> int:
    rows = [{"training_data_id": int(i), "model_name": model_name, "model_version": model_version, "used_at": used_at} for i in training_ids]
    return bulk_insert(connection, schema.training_data_usage, rows)


def courses_learned_by(connection: sa.Connection, model_name: str, model_version: int) -> set[str]:
    usage, rows = schema.training_data_usage, schema.training_data
    query = (
        sa.select(rows.c.course_id).distinct()
        .select_from(usage.join(rows, rows.c.id == usage.c.training_data_id))
        .where(usage.c.model_name == model_name, usage.c.model_version == model_version)
    )
    return set(connection.execute(query).scalars())


def map_courses(
    connection: sa.Connection, course_ids: Iterable[str], model_name: str, now: datetime,
    auto_predict: bool | None = None, frequency: str | None = None,
) -> None:
    """Map each course to the model. Whether and how often a course is predicted and its
    worklist share stay as the course has them (a promoted domain model changes which model
    serves it, nothing else) unless given here; a course mapped for the first time gets the
    table's defaults (predicted, daily)."""
    settings = {name: value for name, value in (("auto_predict", auto_predict), ("predict_frequency", frequency)) if value is not None}
    for course_id in course_ids:  # the upsert updates the columns it is given only
        upsert_row(connection, schema.course_model_mapping, {"course_id": course_id, "model_name": model_name, **settings, "updated_at": now})


def course_mapping(connection: sa.Connection, course_id: str) -> dict | None:
    table = schema.course_model_mapping
    row = connection.execute(sa.select(table).where(table.c.course_id == course_id)).mappings().first()
    return dict(row) if row else None


def model_for_course(connection: sa.Connection, course_id: str, target: str = "fail") -> dict | None:
    """The course's mapped model (its newest active version), else the target's default."""
    mapping = course_mapping(connection, course_id)
    if mapping is not None:
        mapped = latest_active(connection, mapping["model_name"])
        if mapped is not None and mapped["target"] == target:
            return mapped
    return default_model(connection, target)
