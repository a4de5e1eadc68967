"""model_registry, model_performance, course_model_mapping and training-data usage."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, upsert_row

registry = schema.model_registry
CLAIM_ATTEMPTS = 50  # as many retrains of one model name at once as could ever run


def model_label(model: dict | None) -> str | None:
    """How a model is named to people: "fail_risk_model v3"."""
    return f"{model['model_name']} v{model['model_version']}" if model else None


def next_version(connection: sa.Connection, model_name: str) -> int:
    """The number after the model name's highest; only claim_version makes it the caller's."""
    current = connection.execute(sa.select(sa.func.max(registry.c.model_version)).where(registry.c.model_name == model_name)).scalar()
    return (current or 0) + 1


def _version_exists(engine: sa.Engine, model_name: str, model_version: int) -> bool:
    query = sa.select(registry.c.id).where(registry.c.model_name == model_name, registry.c.model_version == model_version)
    with engine.connect() as connection:
        return connection.execute(query).first() is not None


def claim_version(engine: sa.Engine, row: dict, model_path_of: Callable[[int], str]) -> int:
    """Register `row` under the next version of its model name, inactive, in a transaction
    of its own; return the version, now the caller's alone.

    The number is taken by the insert itself: the registry's unique key on (model_name,
    model_version) refuses a second row with it, so of two retrains of one model at once
    that read the same highest number, one inserts and the other is refused and takes the
    next. The transaction is short (nothing else waits behind it while models are saved).
    The caller writes the version's files only once it holds the number, then completes
    the version (complete_version) or gives it back (release_version).
    """
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with engine.begin() as connection:
                version = next_version(connection, row["model_name"])
                values = {**row, "model_version": version, "model_path": model_path_of(version), "is_active": False, "is_default": False}
                connection.execute(registry.insert(), [values])
            return version
        except sa.exc.IntegrityError:
            if not _version_exists(engine, row["model_name"], version):
                raise  # refused for another reason than the number
    raise RuntimeError(f"{row['model_name']}: no version could be claimed in {CLAIM_ATTEMPTS} attempts")


def complete_version(connection: sa.Connection, model_name: str, model_version: int, is_active: bool) -> None:
    """A claimed version, its files in place and its evaluation recorded: active when it passed its gate."""
    connection.execute(
        registry.update().where(registry.c.model_name == model_name, registry.c.model_version == model_version).values(is_active=is_active)
    )


def release_version(engine: sa.Engine, model_name: str, model_version: int) -> None:
    """A claimed version that never completed (its retrain failed after the claim): its row goes."""
    with engine.begin() as connection:
        connection.execute(registry.delete().where(registry.c.model_name == model_name, registry.c.model_version == model_version))


def default_model(connection: sa.Connection, target: str) -> dict | None:
    query = sa.select(registry).where(registry.c.target == target, registry.c.is_default.is_(True))
    row = connection.execute(query.order_by(registry.c.model_version.desc())).mappings().first()
    return dict(row) if row else None


def latest_active(connection: sa.Connection, model_name: str) -> dict | None:
    query = sa.select(registry).where(registry.c.model_name == model_name, registry.c.is_active.is_(True))
    row = connection.execute(query.order_by(registry.c.model_version.desc())).mappings().first()
    return dict(row) if row else None


def promote_to_default(connection: sa.Connection, model_name: str, model_version: int, target: str) -> None:
    """The one default model of a target becomes this version (champion/challenger).

    One statement over every version of the target: two promotions at once then queue on
    the same rows, and the later one unsets the earlier one's default, where "unset the
    default, then set mine" lets each miss the other's uncommitted default and leaves two.
    """
    this_version = sa.and_(registry.c.model_name == model_name, registry.c.model_version == model_version)
    connection.execute(registry.update().where(registry.c.target == target).values(is_default=sa.case((this_version, True), else_=False)))


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
