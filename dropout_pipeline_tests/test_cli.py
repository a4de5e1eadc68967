"""`dropout-pipeline run`: the whole cycle against any platform that follows the contract."""

import os
import subprocess
import sys

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import TODAY, course_ids


def run_cli(args, env, cwd):
    command = [os.path.join(os.path.dirname(sys.executable), "dropout-pipeline"), *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_refuses_to_start_without_the_platform_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOC_", "H5P_"))}
    done = run_cli(["run"], env, tmp_path)
    assert done.returncode == 2
    assert "set MOOC_API_URL, MOOC_API_SESSIONID, H5P_API_URL, H5P_API_TOKEN" in done.stderr


def test_run_discovers_replays_trains_and_predicts_then_only_predicts_again(simulator, tmp_path):
    database = f"sqlite:///{tmp_path / 'platform.db'}"
    env = {
        **os.environ,
        "DROPOUT_DB_URL": database,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DROPOUT_MODELS_DIR": str(tmp_path / "models"),
        "MOOC_API_URL": simulator.mooc_url,
        "MOOC_API_SESSIONID": simulator.state.session_id,
        "H5P_API_URL": simulator.h5p_url,
        "H5P_API_TOKEN": simulator.state.token,
        "SOURCE_API_AS_OF": TODAY.isoformat(),
    }
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    finished, running = course_ids(simulator)

    first = run_cli(["run", "--data-dir", str(tmp_path)], env, tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"{len(finished)} finished" in first.stdout and f"History rebuilt this cycle: {len(finished)} courses; retrained: yes" in first.stdout
    assert "Most at-risk learners" in first.stdout and "Failures" not in first.stdout

    second = run_cli(["run", "--data-dir", str(tmp_path)], env, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "no new training data since the default model was trained: keeping it" in second.stdout
    assert "History rebuilt this cycle: 0 courses; retrained: no" in second.stdout

    with engine_for(database).connect() as connection:
        frozen = set(connection.execute(sa.select(schema.training_data.c.course_id).distinct()).scalars())
        versions = connection.execute(sa.select(sa.func.count()).select_from(schema.model_registry)).scalar()
        runs = connection.execute(sa.select(sa.func.count(sa.distinct(schema.predictions.c.predicted_at)))
                                  .where(schema.predictions.c.course_id == running[0])).scalar()
    assert frozen == set(finished) and versions == 2 and runs == 2
