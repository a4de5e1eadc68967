"""`dropout-pipeline run` while the daemon works: the CLI planned a batch once and ran it
step by step in-process, and a sensor tick in between launched the same courses' refreshes,
so two refreshes of one course wrote two prediction batches per learner in a day.

The CLI runs as a user runs it, in a process of its own; this test is the daemon, on the
same Dagster instance and database: from the moment the CLI starts its refreshes, it ticks
the lifecycle sensor and launches what each tick asks for, until the CLI is done. (Both in
one process, Dagster's in-process execution reconfiguring Python's logging from two threads
at once could deadlock the test.)
"""

import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.defs.resources import ClockResource
from dropout_pipeline.defs.sensors import course_lifecycle_sensor
from dropout_pipeline.lifecycle.runs import STEP_TAG
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import TODAY, resources_for
from dropout_pipeline_tests.test_lifecycle import launch

GIVE_UP_AFTER_SECONDS = 8 * 60


def _lines_into(stream, lines: queue.Queue) -> None:
    """The CLI's output, line by line, then None at its end (no Dagster in this thread)."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def _take_lines(lines: queue.Queue, output: list[str], wait: float) -> bool:
    """The lines the reader has put so far into `output` (waiting up to `wait` seconds for a
    first one); True once the CLI's output has ended."""
    try:
        line = lines.get(timeout=wait) if wait else lines.get_nowait()
        while line is not None:
            output.append(line)
            line = lines.get_nowait()
        return True
    except queue.Empty:
        return False


def test_the_cli_and_the_daemons_sensor_at_once_run_each_step_once_and_predict_once_a_day(simulator, trained_copy, tmp_path):
    published = [simulator.state.publish_course(n_learners=15, start=TODAY - timedelta(days=14), weeks=6).course_id for _ in range(3)]
    resources = {**resources_for(simulator, trained_copy["url"], trained_copy["models"]), "clock": ClockResource(today=f"{TODAY}T12:00")}
    defs = build_definitions(resources)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ, "DROPOUT_DB_URL": trained_copy["url"], "DROPOUT_MODELS_DIR": str(trained_copy["models"]), "DAGSTER_HOME": str(home),
        "MOOC_API_URL": simulator.mooc_url, "MOOC_API_SESSIONID": DEFAULT_SESSION_ID,
        "H5P_API_URL": simulator.h5p_url, "H5P_API_TOKEN": DEFAULT_TOKEN, "DROPOUT_TODAY": f"{TODAY}T12:00",
        "PYTHONUNBUFFERED": "1",  # each progress line as it is printed
    }
    command = [os.path.join(os.path.dirname(sys.executable), "dropout-pipeline"), "run", "--data-dir", str(tmp_path / "cli")]
    cli = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_lines_into, args=(cli.stdout, lines), daemon=True)
    reader.start()
    output: list[str] = []
    sensor_results: list[dg.ExecuteInProcessResult] = []
    ticks = 0
    given_up = time.monotonic() + GIVE_UP_AFTER_SECONDS
    with dg.DagsterInstance.from_config(str(home)) as instance:
        try:
            refreshing = False
            while not _take_lines(lines, output, wait=0 if refreshing else 1):
                refreshing = refreshing or any("] refresh" in line for line in output)
                if time.monotonic() > given_up:
                    cli.kill()
                    raise AssertionError(f"`dropout-pipeline run` still running after {GIVE_UP_AFTER_SECONDS} s:\n{''.join(output)}")
                if not refreshing:  # the CLI has not started its refreshes yet: the daemon waits
                    continue
                # The daemon's sensor ticking, each tick's runs launched at once.
                with dg.build_sensor_context(instance=instance, resources=resources) as context:
                    evaluation = course_lifecycle_sensor(context)
                ticks += 1
                for request in evaluation.dynamic_partitions_requests or []:
                    instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
                sensor_results.extend(launch(defs, instance, request) for request in evaluation.run_requests or [])
                if not evaluation.run_requests:
                    time.sleep(0.2)  # nothing to launch: the next tick a moment later, not at once
        finally:
            if cli.poll() is None:
                cli.kill()
            cli.wait(timeout=60)
            reader.join(timeout=60)
        runs = [r for r in instance.get_runs() if STEP_TAG in r.tags]
    shown = "".join(output)
    assert cli.returncode == 0, shown
    assert ticks > 0, f"the sensor never ticked while the CLI refreshed:\n{shown}"
    refreshes = [r for r in runs if r.job_name == "course_refresh" and r.tags.get("dagster/partition") in published]
    per_course = Counter(r.tags["dagster/partition"] for r in refreshes)
    assert per_course == dict.fromkeys(published, 1), f"course_refresh runs per course: {dict(per_course)}\n{shown}"  # one run per course and step
    assert all(result.success for result in sensor_results)
    assert all(r.status is dg.DagsterRunStatus.SUCCESS for r in runs)
    p = schema.predictions
    with engine_for(trained_copy["url"]).connect() as connection:
        batches = connection.execute(
            sa.select(p.c.course_id, p.c.user_id, p.c.snapshot_date, sa.func.count())
            .where(p.c.course_id.in_(published)).group_by(p.c.course_id, p.c.user_id, p.c.snapshot_date)
        ).all()
    assert batches and {count for *_key, count in batches} == {1}  # one prediction batch per learner and day
