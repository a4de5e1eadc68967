"""The schema on SQLite, PostgreSQL and MariaDB: migrations and database-enforced rules."""

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import alembic_config, create_db_engine, engine_for, replace_rows


def training_row(user_id: int, week: int = 1) -> dict:
    row = {name: 0 for name in FEATURE_NAMES}
    row.update(enrollment_mode="audit", mooc_letter_grade="none")
    return {
        **row,
        "user_id": user_id,
        "course_id": "course-v1:X+Y+2025_S1",
        "snapshot_date": date(2025, 2, 9),
        "snapshot_week": week,
        "semester": "2025_S1",
        "is_passed": False,
        "is_dropout": True,
        "final_grade": 12.5,
        "created_at": datetime(2025, 6, 1),
    }


def test_migrations_upgrade_and_downgrade_on_every_engine(any_database_url):
    engine = create_db_engine(any_database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    tables = set(sa.inspect(engine).get_table_names())
    assert set(schema.metadata.tables) <= tables
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_training_data_refuses_update_and_delete_on_every_engine(any_database_url):
    engine = engine_for(any_database_url)
    with engine.begin() as connection:
        connection.execute(schema.training_data.insert(), [training_row(1), training_row(2)])
    for statement in (
        schema.training_data.update().values(is_passed=True),
        schema.training_data.delete().where(schema.training_data.c.user_id == 1),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="training_data is immutable"):
            with engine.begin() as connection:
                connection.execute(statement)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(schema.training_data.c.user_id, schema.training_data.c.is_passed)).all()
    assert sorted(rows) == [(1, False), (2, False)]


def prediction(user_id: int, is_latest: bool) -> dict:
    return {
        "user_id": user_id, "course_id": "c", "model_name": "m", "model_version": 1, "fail_risk_score": 50.0,
        "risk_level": "MEDIUM", "snapshot_date": date(2026, 1, 1), "reasons": [], "predicted_at": datetime(2026, 1, 1), "is_latest": is_latest,
    }


def test_only_one_latest_prediction_per_learner_on_every_engine(any_database_url):
    engine = engine_for(any_database_url)
    with engine.begin() as connection:
        connection.execute(schema.predictions.insert(), [prediction(1, True), prediction(1, False), prediction(1, False), prediction(2, True)])
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as connection:
            connection.execute(schema.predictions.insert(), [prediction(1, True)])


def test_replace_rows_rolls_back_to_the_previous_rows_when_the_new_ones_fail(sqlite_url):
    engine = engine_for(sqlite_url)
    row = {"user_id": 1, "course_id": "c", "threads_count": 1, "comments_count": 2, "total_interactions": 3, "questions_count": 0,
           "total_upvotes": 0, "fetched_at": datetime(2026, 1, 1)}
    with engine.begin() as connection:
        replace_rows(connection, schema.mooc_discussions, {"course_id": "c"}, [row])
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as connection:
            replace_rows(connection, schema.mooc_discussions, {"course_id": "c"}, [{**row, "threads_count": 9}, {**row, "threads_count": 9}])
    with engine.connect() as connection:
        assert connection.execute(sa.select(schema.mooc_discussions.c.threads_count)).scalars().all() == [1]
