"""The lifecycle's bookkeeping: step claims, training attempts that gave no model, course
freezes, and what each model version learned from (read by the planner every minute)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.feature_tables import learnable


def claim_step(connection: sa.Connection, step_key: str, claimed_by: str, now: datetime) -> bool:
    """Take the step for this launcher; False when another launcher holds it. The primary
    key decides, so two launchers that planned the step at the same moment cannot both win."""
    try:
        with connection.begin_nested():
            connection.execute(schema.step_claims.insert().values(step_key=step_key, claimed_by=claimed_by, claimed_at=now))
    except sa.exc.IntegrityError:
        return False
    return True


def release_step(connection: sa.Connection, step_key: str) -> None:
    """Give the step back (its run failed, or never started), so it can be tried again."""
    connection.execute(schema.step_claims.delete().where(schema.step_claims.c.step_key == step_key))


def learnable_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return count_learnable(connection)


def count_learnable(connection: sa.Connection) -> int:
    return int(connection.execute(sa.select(sa.func.count()).select_from(schema.training_data).where(learnable())).scalar())


def record_training_attempt(connection: sa.Connection, model_name: str, learnable_rows: int, reason: str, now: datetime) -> None:
    connection.execute(schema.training_attempts.insert().values(model_name=model_name, learnable_rows=learnable_rows, reason=reason, attempted_at=now))


def newest_version(connection: sa.Connection, model_name: str) -> dict | None:
    registry = schema.model_registry
    row = connection.execute(
        sa.select(registry.c.model_name, registry.c.model_version, registry.c.trained_at)
        .where(registry.c.model_name == model_name).order_by(registry.c.model_version.desc()).limit(1)
    ).mappings().first()
    return dict(row) if row else None


def unseen_by_model(connection: sa.Connection, model_name: str, model_version: int) -> int:
    """Learnable rows the version did not learn from (no training_data_usage row of it)."""
    rows, usage = schema.training_data, schema.training_data_usage
    seen = sa.exists().where(usage.c.training_data_id == rows.c.id, usage.c.model_name == model_name, usage.c.model_version == model_version)
    return int(connection.execute(sa.select(sa.func.count()).select_from(rows).where(learnable(), ~seen)).scalar())


def unseen_by_attempt(connection: sa.Connection, model_name: str, learnable_rows: int, after: datetime | None) -> tuple[int, str] | None:
    """(rows frozen since, its reason) for the target's newest attempt that gave no model,
    when it came after `after` (its newest version's training); None otherwise."""
    attempts = schema.training_attempts
    query = sa.select(attempts.c.learnable_rows, attempts.c.reason, attempts.c.attempted_at).where(attempts.c.model_name == model_name)
    if after is not None:
        query = query.where(attempts.c.attempted_at >= after)
    row = connection.execute(query.order_by(attempts.c.id.desc()).limit(1)).first()
    return (max(learnable_rows - row.learnable_rows, 0), row.reason) if row else None


def record_freeze(connection: sa.Connection, course_id: str, course_end: datetime | None, outcome: str, training_rows: int, reason: str | None, now: datetime) -> None:
    connection.execute(
        schema.course_freezes.insert().values(
            course_id=course_id, course_end=course_end, outcome=outcome, training_rows=training_rows, reason=reason, frozen_at=now
        )
    )


def latest_freezes(connection: sa.Connection) -> dict[str, dict]:
    """Each course's newest freeze."""
    freezes = schema.course_freezes
    newest = sa.select(sa.func.max(freezes.c.id)).group_by(freezes.c.course_id)
    rows = connection.execute(sa.select(freezes).where(freezes.c.id.in_(newest))).mappings()
    return {row["course_id"]: dict(row) for row in rows}
