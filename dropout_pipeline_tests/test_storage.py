"""The schema on SQLite, PostgreSQL and MariaDB: migrations and database-enforced rules."""

from datetime import date, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import alembic_config, create_db_engine, engine_for, replace_rows, upsert_row
from dropout_pipeline.storage.feature_tables import read_training_data


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


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


HEAD = _head()  # the newest migration, whichever it is
RACER = """
import sys, time
from dropout_pipeline.storage.database import create_db_engine, upgrade_schema
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
upgrade_schema(create_db_engine(sys.argv[1]))
"""


def test_processes_migrating_a_fresh_database_at_once_all_succeed_on_every_engine(any_database_url):
    """As when the nine ingestion steps of a first run start in parallel processes."""
    import subprocess
    import sys
    import time

    start_at = str(time.time() + 4)  # every process imported and waiting before the first one starts
    racers = [subprocess.Popen([sys.executable, "-c", RACER, any_database_url, start_at], stderr=subprocess.PIPE, text=True) for _ in range(6)]
    failures = [racer.stderr.read()[-1500:] for racer in racers if racer.wait(timeout=300) != 0]
    assert failures == []
    engine = create_db_engine(any_database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    assert set(schema.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()



def history_row(user_id: int, snapshot_date: date, recorded_at: datetime) -> dict:
    row = {name: 0 for name in FEATURE_NAMES}
    row.update(enrollment_mode="audit", mooc_letter_grade="none")
    return {**row, "user_id": user_id, "course_id": "course-v1:X+Y+2025_S1", "snapshot_date": snapshot_date,
            "snapshot_week": (snapshot_date - date(2025, 2, 3)).days // 7 + 1, "recorded_at": recorded_at}


def _as_of_revision(connection, name: str) -> sa.Table:
    """A table as an earlier revision left it (the schema module describes only the latest)."""
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def _only_columns_of(table: sa.Table, rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k in table.c} for row in rows]


def test_the_migration_moves_daily_refresh_rows_out_of_a_mixed_history_on_every_engine(any_database_url):
    """A database of the earlier layout: a replay (one recorded_at over three dates) and two
    daily refreshes (one date each) in the same history, and frozen training rows that a
    model learned from; every later migration (0006 rebuilds training_data on SQLite) keeps
    the frozen rows and what points at them."""
    engine = create_db_engine(any_database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0002")
    replayed, refreshed = datetime(2025, 6, 1, 3), [datetime(2025, 5, 20, 6), datetime(2025, 5, 21, 6)]
    with engine.begin() as connection:
        history, training = _as_of_revision(connection, "student_features_history"), _as_of_revision(connection, "training_data")
        connection.execute(history.insert(), _only_columns_of(history, [
            history_row(u, d, replayed) for u in (1, 2) for d in (date(2025, 2, 9), date(2025, 2, 16), date(2025, 2, 23))]))
        connection.execute(history.insert(), _only_columns_of(history, [
            history_row(u, date(2025, 2, 18 + n), at) for u in (1, 2) for n, at in enumerate(refreshed)]))
        connection.execute(training.insert(), _only_columns_of(training, [training_row(1), training_row(2)]))
        frozen_before = connection.execute(sa.select(training).order_by(training.c.id)).all()
        connection.execute(schema.training_data_usage.insert(), [
            {"training_data_id": row.id, "model_name": "m", "model_version": 1, "used_at": replayed} for row in frozen_before])
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    with engine.connect() as connection:
        kept = connection.execute(sa.select(schema.student_features_history.c.recorded_at).distinct()).scalars().all()
        moved = connection.execute(sa.select(schema.student_features_daily.c.snapshot_date, sa.func.count())
                                   .group_by(schema.student_features_daily.c.snapshot_date).order_by(schema.student_features_daily.c.snapshot_date)).all()
        frozen_after = connection.execute(sa.select(*(schema.training_data.c[c.name] for c in training.columns)).order_by(schema.training_data.c.id)).all()
        used = connection.execute(sa.select(sa.func.count()).select_from(schema.training_data_usage.join(schema.training_data))).scalar()
    assert kept == [replayed]
    assert moved == [(date(2025, 2, 18), 2), (date(2025, 2, 19), 2)]
    assert frozen_after == frozen_before and len(frozen_after) == 2 and used == 2
    with pytest.raises(sa.exc.DatabaseError, match="immutable"), engine.begin() as connection:  # still refused after the rebuild
        connection.execute(schema.training_data.update().values(is_passed=True))
    with engine.begin() as connection:  # keyed by date now: days 1, 4 and 7 of one week are three rows
        connection.execute(schema.training_data.insert(), [{**training_row(1), "snapshot_date": date(2025, 2, 12)},
                                                           {**training_row(1), "snapshot_date": date(2025, 2, 15)}])
        learned = read_training_data(connection)  # rows frozen before 0006 (NULL new features) are never learned from
        assert sorted(learned["snapshot_date"]) == [date(2025, 2, 12), date(2025, 2, 15)]
        assert len(connection.execute(sa.select(schema.training_data)).all()) == 4
    with pytest.raises(RuntimeError, match="several snapshots of one week"), engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0005")
    engine.dispose()


def test_two_runs_storing_the_same_course_at_once_both_succeed_on_every_engine(any_database_url):
    """The catalogue and a course's refresh both store the course's row. The second waits
    for the first's transaction, then must update the row, not fail on its key."""
    import threading
    import time

    engine = engine_for(any_database_url)
    row = {"course_id": "course-v1:T+RACE+2026_S2", "display_name": "first", "org": "T", "start": datetime(2026, 9, 6, 17),
           "end": None, "enrollment_count": 10, "discovered_at": datetime(2026, 9, 1)}
    errors = []

    def second_run() -> None:
        try:
            with engine.begin() as connection:
                upsert_row(connection, schema.courses, {**row, "display_name": "second", "enrollment_count": 12})
        except Exception as error:  # noqa: BLE001 - the test reports whatever the second run met
            errors.append(error)

    with engine.begin() as connection:
        upsert_row(connection, schema.courses, row)
        second = threading.Thread(target=second_run)
        second.start()
        time.sleep(1.0)  # the second run is now waiting for this transaction
    second.join(timeout=60)
    assert errors == []
    with engine.connect() as connection:
        stored = connection.execute(sa.select(schema.courses.c.display_name, schema.courses.c.enrollment_count)).all()
    assert [tuple(r) for r in stored] == [("second", 12)]
