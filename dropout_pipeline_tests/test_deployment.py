"""The production instance (dagster.yaml on PostgreSQL) and the Dagster daemon, for real.

The end-to-end test starts `dagster-daemon` on the repository's code location with the
clock after a course's end, publishes new courses in the simulator, and waits for the
freeze, the predictions and the alert: no manual step between.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.simulator.runner import simulator_thread
from dropout_pipeline.simulator.server import Faults, SimulatorState
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import SECRET_PATH, SMALL_WORLD, resources_for, webhook_receiver

ENDED = "course-v1:UEL+AC102+2026_S2"  # the small world's running course, which ends on 2026-12-20

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
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == 4
        assert queue.tag_concurrency_limits == [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
        defs = build_definitions(resources_for(simulator, f"sqlite:///{tmp_path / 'product.db'}", tmp_path / "models"))
        assert defs.resolve_job_def("discover_courses").execute_in_process(instance=instance).success
        assert set(instance.get_dynamic_partitions("courses")) == {c.course_id for c in simulator.state.listed_courses()}
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
    engine.dispose()


def test_the_daemon_freezes_an_ended_course_predicts_a_new_one_and_alerts_a_failure_unattended(trained_copy, postgres_url, tmp_path, monkeypatch):
    """The real `dagster-daemon` on the production instance, two days after the running
    course ended: it freezes that course, gives a course that appears in the catalogue its
    predictions, and posts a failing course's run to the alert webhook. No manual step."""
    day = date(2026, 12, 22)
    home = production_home(tmp_path, postgres_url, monkeypatch)
    interval = os.environ.get("DAEMON_TEST_SENSOR_INTERVAL_SECONDS", "2")  # benchmarks/predict.py runs it at the default
    with simulator_thread(SimulatorState(world=SMALL_WORLD, clock=day)) as simulator, webhook_receiver() as (hook_url, alerts):
        with dg.DagsterInstance.from_config(str(home)) as instance:  # the courses the installation already knows
            instance.add_dynamic_partitions("courses", [c.course_id for c in simulator.state.listed_courses()])
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DROPOUT_DB_URL": trained_copy["url"],
            "DROPOUT_MODELS_DIR": str(trained_copy["models"]),
            "MOOC_API_URL": simulator.mooc_url,
            "MOOC_API_SESSIONID": simulator.state.session_id,
            "H5P_API_URL": simulator.h5p_url,
            "H5P_API_TOKEN": simulator.state.token,
            "SOURCE_API_MAX_RETRIES": "0",
            "DROPOUT_TODAY": f"{day}T12:00",  # at noon (first predictions wait for 06:00); the platform's clock is pinned too
            "COURSE_SENSOR_INTERVAL_SECONDS": interval,
            "DROPOUT_ALERT_WEBHOOK_URL": hook_url + SECRET_PATH,
            "DROPOUT_FREEZE_GRACE_DAYS": "0",  # frozen two days after its end, not after a week's grace (tested in test_planner)
        }
        daemon_binary = os.path.join(os.path.dirname(sys.executable), "dagster-daemon")
        log = open(tmp_path / "daemon.log", "w")
        daemon = subprocess.Popen([daemon_binary, "run", "-m", "dropout_pipeline.definitions"], cwd=REPOSITORY, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            broken = simulator.state.publish_course(n_learners=20).course_id
            simulator.state.set_faults(Faults(error_rate=1.0, path_prefix=f"/mooc/export/student-grades/{broken}/"))
            engine = engine_for(trained_copy["url"])
            started = time.monotonic()
            while time.monotonic() - started < 300 and not (frozen_rows(engine, ENDED) and alerts):
                time.sleep(1)
            assert frozen_rows(engine, ENDED) > 0, (tmp_path / "daemon.log").read_text()[-3000:]
            assert [(alert["job"], alert["partition"]) for _path, alert in alerts[:1]] == [("course_refresh", broken)]

            # Then, on a quiet installation, a new course appears: the new-course latency.
            new_course = simulator.control("courses", {"n_learners": 30})["course_id"]
            appeared = time.monotonic()
            while time.monotonic() - appeared < 240 and not learners(engine, schema.predictions, new_course):
                time.sleep(0.5)
            latency = time.monotonic() - appeared
            assert learners(engine, schema.predictions, new_course) == learners(engine, schema.enrollments, new_course) > 0
            print(f"course appeared -> predictions stored: {latency:.1f}s (sensor interval {interval} s)")
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
            stop_what_the_daemon_left(daemon.pid)
            log.close()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launched = sorted(r.tags["dropout/step"] for r in instance.get_runs() if r.tags.get("dagster/sensor_name") == "course_lifecycle_sensor")
    assert [step for step in launched if not step.startswith(f"register-{day}-")] == sorted(
        [f"freeze-{day}-{ENDED}", f"refresh-{day}-{broken}", f"refresh-{day}-{new_course}"]
    )  # no retrain: a default exists, so the new rows wait for 02:00


def learners(engine, table, course_id: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count(sa.distinct(table.c.user_id))).where(table.c.course_id == course_id)).scalar()


def frozen_rows(engine, course_id: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(schema.training_data).where(schema.training_data.c.course_id == course_id)).scalar()


def stop_what_the_daemon_left(group: int) -> None:
    """The daemon's code server shares its process group but outlives a SIGTERM (it was seen
    running hours later): nothing a test started may linger and take the next tests' CPU."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
