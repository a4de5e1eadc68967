"""The production instance (dagster.yaml on PostgreSQL) and the Dagster daemon, for real.

The end-to-end test starts `dagster-daemon` on the repository's code location, publishes
a new course in the simulator, and waits for its predictions: no manual step between.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import TODAY, resources_for

REPOSITORY = Path(__file__).parents[1]


def dagster_postgres_url(sqlalchemy_url: str) -> str:
    """dagster-postgres needs psycopg2 named: SQLAlchemy 2.1 defaults postgresql:// to psycopg 3."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql+psycopg2://")


def production_home(tmp_path: Path, postgres_url: str, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPOSITORY / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", dagster_postgres_url(postgres_url))
    return home


def test_the_production_instance_stores_runs_in_postgresql(simulator, postgres_url, tmp_path, monkeypatch):
    home = production_home(tmp_path, postgres_url, monkeypatch)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        defs = build_definitions(resources_for(simulator, f"sqlite:///{tmp_path / 'product.db'}", tmp_path / "models"))
        assert defs.resolve_job_def("discover_courses").execute_in_process(instance=instance).success
        assert set(instance.get_dynamic_partitions("courses")) == {c.course_id for c in simulator.state.listed_courses()}
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
    engine.dispose()


def test_the_daemon_predicts_a_newly_appeared_course_with_no_manual_step(simulator, trained_copy, postgres_url, tmp_path, monkeypatch):
    home = production_home(tmp_path, postgres_url, monkeypatch)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the courses the installation already knows
        instance.add_dynamic_partitions("courses", [c.course_id for c in simulator.state.listed_courses()])
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DROPOUT_DB_URL": trained_copy["url"],
        "MOOC_API_URL": simulator.mooc_url,
        "MOOC_API_SESSIONID": simulator.state.session_id,
        "H5P_API_URL": simulator.h5p_url,
        "H5P_API_TOKEN": simulator.state.token,
        "SOURCE_API_AS_OF": TODAY.isoformat(),  # the simulated platform's clock is pinned
        "COURSE_SENSOR_INTERVAL_SECONDS": "2",
    }
    daemon_binary = os.path.join(os.path.dirname(sys.executable), "dagster-daemon")
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen([daemon_binary, "run", "-m", "dropout_pipeline.definitions"], cwd=REPOSITORY, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(5)
        new_course = simulator.control("courses", {"n_learners": 30})["course_id"]
        appeared = time.monotonic()
        engine = engine_for(trained_copy["url"])
        predicted = 0
        while time.monotonic() - appeared < 240 and not predicted:
            time.sleep(2)
            with engine.connect() as connection:
                predicted = connection.execute(
                    sa.select(sa.func.count()).select_from(schema.predictions).where(schema.predictions.c.course_id == new_course)
                ).scalar()
        with engine.connect() as connection:
            enrolled = connection.execute(
                sa.select(sa.func.count()).select_from(schema.enrollments).where(schema.enrollments.c.course_id == new_course)
            ).scalar()
        assert predicted == enrolled > 0, (tmp_path / "daemon.log").read_text()[-3000:]
        print(f"course appeared -> predictions stored: {time.monotonic() - appeared:.1f}s")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert [r.tags.get("dagster/partition") for r in runs if r.tags.get("dagster/sensor_name") == "new_course_sensor"] == [new_course]
