"""The web app's settings: the one place `serve` gathers them.

The database URL and the product's clock come from the readers every command shares
(`defs.resources`: DROPOUT_DB_URL, DROPOUT_TODAY, DROPOUT_TIMEZONE); Dagster's instance
comes from DAGSTER_HOME, as for `run` and `demo`. Host and port are the command's flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dropout_pipeline.clock import Clock

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
SESSION_LIFETIME = timedelta(hours=12)
# Per worker: the requests whose Python runs at once (the others wait their turn in the
# event loop rather than contend for the interpreter: measured with benchmarks/serve.py,
# 4 threads instead of anyio's 40 cut a risk list's p95 from 390 to 260 ms), and the
# connections kept open for the requests in flight (as many again opened under a burst).
WORKER_THREADS = 4
DATABASE_CONNECTIONS = 16


@dataclass(frozen=True)
class WebSettings:
    database_url: str
    clock: Clock
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    session_lifetime: timedelta = SESSION_LIFETIME
    worker_threads: int = WORKER_THREADS
    database_connections: int = DATABASE_CONNECTIONS

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def settings_from_environment(data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> WebSettings:
    from dropout_pipeline.defs.resources import build_resources, database_url

    return WebSettings(database_url=database_url(data_dir), clock=build_resources(data_dir)["clock"].clock(), host=host, port=port)
