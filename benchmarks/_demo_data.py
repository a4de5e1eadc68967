"""Shared by the benchmarks: a private copy of a demo's database (the simulator's real data).

The default profile's is the one `make demo` fills (data/); another profile's goes to
data/benchmark-<profile>/. A missing one is made by running that demo once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import DEFAULT_DATA_DIR, engine_for

DATABASE_FILE = "dropout_pipeline.db"


def demo_data_dir(profile: str) -> Path:
    return DEFAULT_DATA_DIR if profile == "default" else DEFAULT_DATA_DIR / f"benchmark-{profile}"


def _run_demo(profile: str, data_dir: Path) -> None:
    print(f"(no {profile} demo data yet: running `dropout-pipeline demo --profile {profile} --data-dir {data_dir}` once)", flush=True)
    environment = {key: value for key, value in os.environ.items() if key not in ("DROPOUT_DB_URL", "DAGSTER_HOME")}
    command = [sys.executable, "-m", "dropout_pipeline.cli", "demo", "--profile", profile, "--data-dir", str(data_dir)]
    completed = subprocess.run(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        sys.exit(f"the {profile} demo failed:\n{completed.stderr[-3000:]}")


def demo_copy(folder: Path, profile: str = "default") -> sa.Engine:
    """A copy of the SQLite database a demo filled, so benchmarks never change it."""
    database = demo_data_dir(profile) / DATABASE_FILE
    if not database.exists():
        _run_demo(profile, demo_data_dir(profile))
    copy = folder / f"demo_copy_{profile}.db"
    shutil.copy(database, copy)
    engine = engine_for(f"sqlite:///{copy}")
    with engine.connect() as connection:
        if not connection.execute(sa.select(sa.func.count()).select_from(schema.training_data)).scalar():
            sys.exit(f"no training data in {database}: run the {profile} demo first")
    return engine
