"""Feature building at scale: 10,000, 50,000 and 100,000 learners in courses of 1,000.

One real course of 1,000 learners is pulled from the simulator (as the assets pull it),
then copied under new course ids up to each scale and stored in a SQLite database.
Each figure times reading the raw tables the features need back and building `student_features` for
every learner. Target: 100,000 learners in under 15 s, growing linearly.

    .venv/bin/python benchmarks/features.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.features.build import INPUT_COLUMNS, build_features
from dropout_pipeline.ingestion.pull import pull_catalog, pull_course
from dropout_pipeline.ingestion.rows import course_row
from dropout_pipeline.simulator.runner import simulator_process
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
from dropout_pipeline.source_api.client import ClientSettings
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for, read_frame
from dropout_pipeline.storage.raw_tables import read_raw_columns, tables_as_frames

SCALES = (10_000, 50_000, 100_000)
COURSE_SIZE = 1_000
TODAY = date(2026, 11, 22)


def one_course() -> tuple[dict[str, pd.DataFrame], dict]:
    args = ["--today", TODAY.isoformat(), "--past-semesters", "0", "--running-courses", "1",
            "--min-learners", str(COURSE_SIZE), "--max-learners", str(COURSE_SIZE)]
    with simulator_process(args) as simulator:
        settings = ClientSettings(simulator.mooc_url, DEFAULT_SESSION_ID, simulator.h5p_url, DEFAULT_TOKEN, concurrency=32)
        course = pull_catalog(settings)[0][0]
        pulled = pull_course(settings, course.course_id, as_of=TODAY)
    return tables_as_frames(pulled.tables), course_row(course, pd.Timestamp.now().to_pydatetime())


def store_copies(engine: sa.Engine, tables: dict[str, pd.DataFrame], course: dict, copies: int) -> None:
    with engine.begin() as connection:
        for table in [schema.courses, *schema.RAW_TABLES.values()]:
            connection.execute(table.delete())
        for n in range(copies):
            course_id = f"{course['course_id']}-copy{n:03d}"
            connection.execute(schema.courses.insert(), [{**course, "course_id": course_id}])
            for name, frame in tables.items():
                frame.assign(course_id=course_id).to_sql(name, connection, if_exists="append", index=False, method=None, chunksize=10_000)


def read_and_build(engine: sa.Engine) -> tuple[int, float, float]:
    started = time.perf_counter()
    with engine.connect() as connection:
        courses = read_frame(connection, sa.select(schema.courses))
        raw = read_raw_columns(connection, INPUT_COLUMNS)
    read_seconds = time.perf_counter() - started
    features = build_features(raw, courses, TODAY)
    return len(features), read_seconds, time.perf_counter() - started


def main() -> None:
    tables, course = one_course()
    tables = {name: frame.drop(columns=["section_breakdown", "attributes"], errors="ignore") for name, frame in tables.items()}
    print(f"one simulated course: {len(tables['enrollments'])} learners, {len(tables['h5p_scores'])} H5P score rows")
    with tempfile.TemporaryDirectory() as folder:
        engine = engine_for(f"sqlite:///{Path(folder) / 'features.db'}")
        for scale in SCALES:
            copies = scale // len(tables["enrollments"])
            store_copies(engine, tables, course, copies)
            learners, read_seconds, total = read_and_build(engine)
            print(f"{learners:>7} learners ({copies:>3} courses): read raw tables {read_seconds:5.2f} s, "
                  f"build {total - read_seconds:5.2f} s, total {total:5.2f} s  ({learners / total:,.0f} learners/s)")


if __name__ == "__main__":
    main()
