"""A semester unattended: 120 days of a rolling intake through the planner, one tick a day.

The simulator serves two past semesters of finished courses and a rolling intake of
courses (4 to 10 weeks each) that start and finish on different dates around the first
day, as a platform that lists no course before its start (a course is unknown, 404, as
of any earlier day: the replay's witness of the day before the start included). Each simulated day, the platform's clock moves and the product does what the daemon
would do that day (`run_day`: the lifecycle sensor until quiet, the 02:00 retrain, the
sensor's 06:00 refreshes), on SQLite. Printed per day: wall time, rows frozen, models trained, and
the prediction coverage of the running courses: learners the platform lists as enrolled
at the end of the day a refresh scores (yesterday: the feature dictionary's one moment per
row) who have a prediction made that day for it (target: 100% every day; a course on its
start day has no whole day to score yet). Exits 1 when a run
failed or a day's coverage fell short.

    .venv/bin/python -m benchmarks.semester [--days 120] [--courses 12] [--profile default|realistic]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import sqlalchemy as sa

from dropout_pipeline.cycle import run_day
from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.features.calendar import scored_day
from dropout_pipeline.defs.resources import AlertWebhookResource, ClockResource, DatabaseResource, PipelineSettings, SourceApiResource
from dropout_pipeline.ingestion.pull import pull_mooc_table
from dropout_pipeline.lifecycle.facts import platform_catalogue
from dropout_pipeline.lifecycle.plan import CourseState, state_of
from dropout_pipeline.simulator.runner import simulator_process
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
from dropout_pipeline.simulator.world import PROFILES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for

FIRST_DAY = date(2026, 11, 23)


def running_courses(settings, day: date) -> list[str]:
    """Courses running on `day` with a whole day to score (not on their start day)."""
    return [
        entry.calendar.course_id for entry in platform_catalogue(settings, day)
        if state_of(entry.calendar, day) is CourseState.RUNNING and day >= entry.calendar.first_refresh_day()
    ]


def coverage(engine: sa.Engine, settings, courses: list[str], day: date) -> tuple[int, int]:
    """(learners predicted today, learners the platform lists as enrolled at the end of the day
    a refresh today scores) over `courses`."""
    predicted = enrolled = 0
    p = schema.predictions
    scored_on = scored_day(day)
    with engine.connect() as connection:
        for course_id in courses:
            listed = {row["user_id"] for row in pull_mooc_table(settings, "enrollments", course_id, scored_on).tables["enrollments"]}
            scored = set(connection.execute(
                sa.select(p.c.user_id).where(p.c.course_id == course_id, p.c.is_latest.is_(True), p.c.snapshot_date == scored_on)
            ).scalars())
            predicted, enrolled = predicted + len(listed & scored), enrolled + len(listed)
    return predicted, enrolled


def counts(engine: sa.Engine) -> tuple[int, int]:
    """(frozen training rows, registered model versions)."""
    with engine.connect() as connection:
        return tuple(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() for table in (schema.training_data, schema.model_registry))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--courses", type=int, default=12)
    parser.add_argument("--profile", choices=PROFILES, default="default", help="the simulator's platform")
    args = parser.parse_args()
    world = ["--profile", args.profile, "--today", FIRST_DAY.isoformat(), "--past-semesters", "2", "--courses-per-semester", "2", "--running-courses", "0",
             "--rolling-courses", str(args.courses), "--rolling-span-days", str(args.days), "--min-learners", "40", "--max-learners", "160"]
    with simulator_process(world) as simulator, tempfile.TemporaryDirectory() as folder:
        httpx.post(f"{simulator.base_url}/_sim/faults", json={"unlisted_before_start": True}, timeout=10).raise_for_status()
        engine = engine_for(f"sqlite:///{Path(folder) / 'semester.db'}")
        source_api = SourceApiResource(mooc_url=simulator.mooc_url, mooc_session_id=DEFAULT_SESSION_ID, h5p_url=simulator.h5p_url,
                                       h5p_token=DEFAULT_TOKEN, concurrency=32)
        settings = source_api.client_settings()
        print(f"{'day':<10} {'wall s':>7} {'running':>7} {'frozen rows':>11} {'models':>6} {'coverage':>17}  failures")
        totals = {"seconds": [], "frozen": 0, "models": 0, "worst": 1.0, "failures": 0}
        home = Path(folder) / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            for offset in range(args.days):
                day = FIRST_DAY + timedelta(days=offset)
                httpx.post(f"{simulator.base_url}/_sim/clock", json={"today": day.isoformat()}, timeout=10).raise_for_status()
                resources = {
                    "database": DatabaseResource(url=str(engine.url)), "source_api": source_api, "clock": ClockResource(today=day.isoformat()),
                    "settings": PipelineSettings(models_dir=str(Path(folder) / "models")), "alert_webhook": AlertWebhookResource(),
                }
                before = counts(engine)
                started = time.perf_counter()
                read_catalogue = lambda day=day: platform_catalogue(settings, day)  # noqa: E731
                report = run_day(build_definitions(resources), instance, engine, read_catalogue, day, progress=lambda _message: None,
                                 grace_days=resources["settings"].freeze_grace_days)
                seconds = time.perf_counter() - started
                frozen, models = (after - earlier for after, earlier in zip(counts(engine), before, strict=True))
                running = running_courses(settings, day)
                predicted, enrolled = coverage(engine, settings, running, day)
                share = predicted / enrolled if enrolled else 1.0
                failures = "; ".join(f"{' '.join(filter(None, (s.run.job_name, s.run.partition_key)))}: {s.outcome}" for s in report.failures)
                print(f"{day} {seconds:7.1f} {len(running):7d} {frozen:11d} {models:6d} {predicted:6d}/{enrolled:<5d} {share:6.1%}  {failures}", flush=True)
                totals["seconds"].append(seconds)
                totals["frozen"] += frozen
                totals["models"] += models
                totals["worst"] = min(totals["worst"], share)
                totals["failures"] += len(report.failures)
    seconds = totals["seconds"]
    print(f"\n{len(seconds)} days: wall time mean {sum(seconds) / len(seconds):.1f} s, max {max(seconds):.1f} s, total {sum(seconds) / 60:.1f} min; "
          f"{totals['frozen']} rows frozen; {totals['models']} models trained; lowest daily coverage {totals['worst']:.1%}; "
          f"{totals['failures']} failed runs")
    if totals["failures"] or totals["worst"] < 1.0:
        sys.exit("the semester did not run clean: see the failed runs or the coverage above")


if __name__ == "__main__":
    main()
