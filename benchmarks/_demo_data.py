"""Shared by the benchmarks: a private copy of the demo's database (the simulator's real data)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import DEFAULT_DATA_DIR, engine_for

DEMO_DATABASE = DEFAULT_DATA_DIR / "dropout_pipeline.db"


def demo_copy(folder: Path) -> sa.Engine:
    """A copy of the SQLite database `make demo` filled, so benchmarks never change it."""
    if not DEMO_DATABASE.exists():
        sys.exit(f"{DEMO_DATABASE} not found: run `make demo` first (it replays the simulator's finished courses)")
    copy = folder / "demo_copy.db"
    shutil.copy(DEMO_DATABASE, copy)
    engine = engine_for(f"sqlite:///{copy}")
    with engine.connect() as connection:
        if not connection.execute(sa.select(sa.func.count()).select_from(schema.training_data)).scalar():
            sys.exit(f"no training data in {DEMO_DATABASE}: run `make demo` first")
    return engine
