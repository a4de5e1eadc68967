"""Prediction speed: scoring and storing 100,000 learners on PostgreSQL, and the time from
a course appearing in the API to its predictions being stored with the daemon running.

Part 1 copies the demo's trained models and its running courses' features into a fresh
PostgreSQL database (100 courses of 1,000 learners, the demo's real feature rows under
new course ids) and times `predict_course` (read features, choose the model, score, SHAP
reasons, append with the one-latest swap) for every course. Target: under 20 s.
Part 2 runs the end-to-end daemon test with the lifecycle sensor at its default interval
(60 s) and reports the latency it measured on a quiet installation. Target: < 2 min.

    make demo && .venv/bin/python -m benchmarks.predict
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from benchmarks._demo_data import demo_copy
from dropout_pipeline.defs.resources import DEFAULT_SENSOR_INTERVAL_SECONDS
from dropout_pipeline.predictions.run import predict_course
from dropout_pipeline.predictions.score import RiskLevels
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for, frame_records, read_frame

POSTGRES = os.environ.get("BENCHMARK_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
COURSES, LEARNERS_PER_COURSE = 100, 1000


def fill(target: sa.Engine, source: sa.Engine) -> list[str]:
    with source.connect() as connection:
        models = read_frame(connection, sa.select(schema.model_registry).where(schema.model_registry.c.is_default.is_(True)))
        features = read_frame(connection, sa.select(schema.student_features))
    base = features.sample(n=LEARNERS_PER_COURSE, replace=len(features) < LEARNERS_PER_COURSE, random_state=0).reset_index(drop=True)
    base["user_id"] = range(1, LEARNERS_PER_COURSE + 1)
    columns = [c.name for c in schema.student_features.columns if c.name != "id"]
    course_ids = [f"course-v1:BENCH+C{n:03d}+2026_S2" for n in range(COURSES)]
    now = datetime.now()
    with target.begin() as connection:
        connection.execute(schema.model_registry.insert(), frame_records(models.drop(columns="id")))
        connection.execute(schema.courses.insert(), [
            {"course_id": c, "display_name": c, "org": "BENCH", "start": datetime(2026, 9, 7), "end": None, "discovered_at": now} for c in course_ids
        ])
        for course_id in course_ids:
            connection.execute(schema.student_features.insert(), frame_records(base.assign(course_id=course_id), columns))
    return course_ids


def scoring_benchmark() -> None:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    name = f"dp_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        with tempfile.TemporaryDirectory() as folder:
            target = engine_for(sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False))
            course_ids = fill(target, demo_copy(Path(folder)))
            started = time.perf_counter()
            scored = sum(len(predict_course(target, course_id, RiskLevels()).scored) for course_id in course_ids)
            seconds = time.perf_counter() - started
            with target.connect() as connection:
                stored = connection.execute(sa.select(sa.func.count()).select_from(schema.predictions)).scalar()
            target.dispose()
        print(f"scored and stored {scored:,} learners ({COURSES} courses) on PostgreSQL in {seconds:.1f} s "
              f"({scored / seconds:,.0f} learners/s); rows in predictions: {stored:,}")
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def daemon_latency() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "dropout_pipeline_tests/test_deployment.py", "-k", "daemon", "-p", "no:cacheprovider"],
        capture_output=True, text=True, cwd=Path(__file__).parents[1],
        env={**os.environ, "DAEMON_TEST_SENSOR_INTERVAL_SECONDS": str(DEFAULT_SENSOR_INTERVAL_SECONDS)},
    )
    found = re.search(r"course appeared -> predictions stored: ([\d.]+)s \(sensor interval (\d+) s\)", done.stdout)
    if done.returncode != 0 or not found:
        print(done.stdout[-3000:], done.stderr[-2000:])
        sys.exit("the daemon end-to-end run failed")
    print(f"new course in GET /courses/ -> predictions stored, dagster-daemon running (sensor every {found.group(2)} s): {found.group(1)} s")


if __name__ == "__main__":
    scoring_benchmark()
    daemon_latency()
