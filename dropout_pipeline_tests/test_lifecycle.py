"""A semester in fast-forward: the platform's clock moved day by day across a course's end,
under Dagster's own sensor and schedule evaluation, and again through `dropout-pipeline
run`; both must leave the same database.

The days: 2026-12-17 to 2026-12-20 are the last four days of the running course (it ends
Sunday 2026-12-20), 2026-12-21 is the day after; a course published as upcoming starts
on 2026-12-21. The two ways of running the product go side by side, each with a platform
(a simulator process) of its own.
"""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.defs.resources import ClockResource
from dropout_pipeline.defs.schedules import nightly_retrain_schedule
from dropout_pipeline.defs.sensors import course_lifecycle_sensor
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.features.labels import training_weeks
from dropout_pipeline.simulator.runner import RunningSimulator, simulator_process
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for, read_frame
from dropout_pipeline.storage.model_tables import default_model
from dropout_pipeline_tests.conftest import SMALL_WORLD, resources_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
DAYS = [date(2026, 12, 17), date(2026, 12, 18), date(2026, 12, 19), date(2026, 12, 20), date(2026, 12, 21), date(2026, 12, 22)]
ENDING = "course-v1:UEL+AC102+2026_S2"  # the small world's running course: 2026-09-07 to 2026-12-20
# Columns that hold wall-clock times, file paths or surrogate keys: the only things two
# runs of the same days may differ in.
VOLATILE = {"id", "fetched_at", "updated_at", "recorded_at", "created_at", "discovered_at", "trained_at", "evaluated_at",
            "predicted_at", "used_at", "model_path", "training_data_id", "computed_at", "chosen_at", "frozen_at", "attempted_at"}
# Which launcher took which step (the sensor, the schedule, the CLI): the one thing the two ways must differ in.
LAUNCHERS_BOOKKEEPING = {"step_claims"}


def launch(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """What the daemon does with a run request, in this process."""
    return defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False
    )


def sensor_until_quiet(defs, instance, resources) -> list[dg.ExecuteInProcessResult]:
    """Ticks of the lifecycle sensor, each acting on the last one's runs, until it asks for nothing."""
    results = []
    for _tick in range(10):
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            evaluation = course_lifecycle_sensor(context)
        for request in evaluation.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        if not evaluation.run_requests:
            return results
        results += [launch(defs, instance, request) for request in evaluation.run_requests]
    raise AssertionError("the lifecycle sensor never went quiet")


def scheduled(schedule, defs, instance, resources, day: date, hour: int) -> list[dg.ExecuteInProcessResult]:
    # In a with block: an evaluation context with resources left to the garbage collector
    # resets Dagster's current-instance context variable whenever it is collected.
    with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=datetime.combine(day, time(hour), HCM)) as context:
        requests = schedule(context)
    return [] if isinstance(requests, dg.SkipReason) else [launch(defs, instance, request) for request in requests]


@contextmanager
def small_platform() -> Iterator[tuple[RunningSimulator, str]]:
    """The small world in a process of its own, with a course published to start on 2026-12-21
    (its id is yielded too)."""
    world = ["--today", SMALL_WORLD.today.isoformat(), "--seed", str(SMALL_WORLD.seed), "--past-semesters", str(SMALL_WORLD.past_semesters),
             "--courses-per-semester", str(SMALL_WORLD.courses_per_semester), "--running-courses", str(SMALL_WORLD.running_courses),
             "--min-learners", str(SMALL_WORLD.min_learners), "--max-learners", str(SMALL_WORLD.max_learners)]
    with simulator_process(world) as simulator:
        upcoming = simulator.control("courses", {"n_learners": 30, "start": "2026-12-21", "weeks": 4})["course_id"]
        yield simulator, upcoming


def daemon_day(simulator, instance, database_url, models, day: date) -> dict[str, list]:
    """The daemon's day: the sensor after midnight, the 02:00 schedule, the sensor at 06:00 and at noon."""
    simulator.control("clock", {"today": day.isoformat()})
    at = {moment: {**resources_for(simulator, database_url, models, today=day, freeze_grace_days=0), "clock": ClockResource(today=f"{day}T{moment}")}
          for moment in ("00:30", "06:00", "12:00")}
    resources = resources_for(simulator, database_url, models, today=day, freeze_grace_days=0)  # the schedules' time is their tick's
    defs = build_definitions(resources)
    runs = {"00:30": sensor_until_quiet(defs, instance, at["00:30"])}
    runs["02:00"] = scheduled(nightly_retrain_schedule, defs, instance, resources, day, 2)
    runs["06:00"] = sensor_until_quiet(defs, instance, at["06:00"])
    runs["12:00"] = sensor_until_quiet(defs, instance, at["12:00"])
    return runs


def cli_days(simulator, folder: Path, database_url: str) -> list[subprocess.CompletedProcess]:
    """`dropout-pipeline run` once a day, the platform's clock moved before each."""
    (folder / "home").mkdir(parents=True)
    (folder / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = []
    for day in DAYS:
        simulator.control("clock", {"today": day.isoformat()})
        env = {
            **os.environ, "DROPOUT_DB_URL": database_url, "DAGSTER_HOME": str(folder / "home"), "DROPOUT_MODELS_DIR": str(folder / "models"),
            "MOOC_API_URL": simulator.mooc_url, "MOOC_API_SESSIONID": DEFAULT_SESSION_ID,
            "H5P_API_URL": simulator.h5p_url, "H5P_API_TOKEN": DEFAULT_TOKEN, "DROPOUT_TODAY": day.isoformat(),
            "DROPOUT_FREEZE_GRACE_DAYS": "0",  # frozen the day after its end, as these days expect (the grace period: test_planner)
        }
        command = [os.path.join(os.path.dirname(sys.executable), "dropout-pipeline"), "run", "--data-dir", str(folder)]
        done.append(subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=600))
    return done


def database_content(url: str) -> dict[str, list[tuple]]:
    """Every table's rows without their volatile columns, in a stable order."""
    engine = engine_for(url)
    content = {}
    with engine.connect() as connection:
        for table in (t for t in schema.metadata.sorted_tables if t.name not in LAUNCHERS_BOOKKEEPING):
            columns = [c for c in table.columns if c.name not in VOLATILE]
            rows = connection.execute(sa.select(*columns)).all()
            content[table.name] = sorted(tuple(json.dumps(v, sort_keys=True, default=str) for v in row) for row in rows)
    return content


def predicted_days(connection, course_id: str) -> list[date]:
    p = schema.predictions
    return list(connection.execute(sa.select(p.c.snapshot_date).where(p.c.course_id == course_id).distinct().order_by(p.c.snapshot_date)).scalars())


def test_a_semester_in_fast_forward_under_the_daemons_triggers_and_through_run_on_successive_days(tmp_path):
    daemon_url, cli_url = f"sqlite:///{tmp_path / 'daemon.db'}", f"sqlite:///{tmp_path / 'cli.db'}"
    with small_platform() as (daemons_platform, upcoming), small_platform() as (clis_platform, _same_course):
        # The two ways of running the product, side by side, each on a platform of its own.
        cli_runs: list[subprocess.CompletedProcess] = []
        cli = threading.Thread(target=lambda: cli_runs.extend(cli_days(clis_platform, tmp_path / "cli", cli_url)))
        cli.start()
        days = {}
        with dg.instance_for_test() as instance:
            for day in DAYS:
                days[day] = daemon_day(daemons_platform, instance, daemon_url, tmp_path / "models", day)
                failures = [r.run_id for runs in days[day].values() for r in runs if not r.success]
                assert failures == [], f"{day}: failed runs"
        cli.join(timeout=900)

    engine = engine_for(daemon_url)
    with engine.connect() as connection:
        # Daily refreshes in the course's last week, each recorded apart from the weekly history.
        # A refresh on day D scores the end of D-1 (one moment per row).
        assert predicted_days(connection, ENDING) == [day - timedelta(days=1) for day in DAYS[:4]]
        daily = read_frame(connection, sa.select(schema.student_features_daily.c.snapshot_date).where(schema.student_features_daily.c.course_id == ENDING))
        assert sorted(set(daily["snapshot_date"])) == [day - timedelta(days=1) for day in DAYS[:4]]
        history = read_frame(connection, sa.select(schema.student_features_history).where(schema.student_features_history.c.course_id == ENDING))
        frozen = read_frame(connection, sa.select(schema.training_data).where(schema.training_data.c.course_id == ENDING))
        course = connection.execute(sa.select(schema.courses).where(schema.courses.c.course_id == ENDING)).mappings().one()
        fail_model, dropout_model = default_model(connection, "fail"), default_model(connection, "dropout")
        usage = connection.execute(
            sa.select(sa.func.count()).select_from(schema.training_data_usage.join(schema.training_data))
            .where(schema.training_data_usage.c.model_name == "fail_risk_model", schema.training_data_usage.c.model_version == 2,
                   schema.training_data.c.course_id == ENDING)
        ).scalar()
        new_course_predictions = predicted_days(connection, upcoming)
        new_course_models = set(connection.execute(sa.select(schema.predictions.c.model_version).where(schema.predictions.c.course_id == upcoming)).scalars())
    # The refreshes never wrote into the history: only the replay's dates are there (days 1, 4
    # and 7 of every week, and the end date), not the days the refreshes scored between them.
    calendar = CourseCalendar(ENDING, course["start"], course["end"])
    assert set(history["snapshot_date"]) == {*calendar.snapshot_dates(until=calendar.end_date), calendar.end_date}
    assert not set(history["snapshot_date"]) & {date(2026, 12, 16), date(2026, 12, 18), date(2026, 12, 19)}  # days 3, 5 and 6 of a week
    # Frozen the day after it ended: one row per learner and snapshot, every week covered (the
    # last one by its days 1 and 4: the end date gives the labels).
    weeks = training_weeks(calendar)
    assert weeks == list(range(1, 16))
    assert sorted(frozen["snapshot_week"].unique()) == weeks
    assert not frozen.duplicated(["user_id", "snapshot_date"]).any()
    # The day after: frozen after midnight, retrained at 02:00; the new course starts that day,
    # and is first predicted the day after, at 06:00, with the new model.
    assert [len(days[DAYS[4]][moment]) for moment in ("00:30", "02:00", "06:00", "12:00")] == [1, 1, 0, 0]
    assert [len(days[DAYS[5]][moment]) for moment in ("00:30", "02:00", "06:00", "12:00")] == [0, 0, 1, 0]
    # The next 2 AM retrain learned from it and became the default.
    assert (fail_model["model_version"], dropout_model["model_version"]) == (2, 2)
    assert usage == len(frozen) > 0
    # The upcoming course waited, then its first day was scored once it had ended.
    assert new_course_predictions == [DAYS[4]] and new_course_models == {2}

    assert [run.returncode for run in cli_runs] == [0] * len(DAYS), "".join(run.stdout[-2000:] + run.stderr[-2000:] for run in cli_runs)
    daemon, cli = database_content(daemon_url), database_content(cli_url)
    assert {name: len(rows) for name, rows in cli.items()} == {name: len(rows) for name, rows in daemon.items()}
    assert [name for name in daemon if daemon[name] != cli[name]] == []

