"""Fixtures: a running simulator, a real database per test on each engine, Dagster resources.

PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) tests create a database of
their own and drop it afterwards. Where a server cannot be reached they skip and say
why; CI's machine runs both, so there they always run.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from dropout_pipeline.defs.resources import AlertWebhookResource, ClockResource, DatabaseResource, PipelineSettings, SourceApiResource
from dropout_pipeline.simulator.runner import RunningSimulator, simulator_thread
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN, SimulatorState
from dropout_pipeline.simulator.world import WorldSettings

TODAY = date(2026, 11, 22)
SMALL_WORLD = WorldSettings(seed=7, today=TODAY, past_semesters=2, courses_per_semester=2, running_courses=1, min_learners=40, max_learners=60)

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
ENGINES = ["sqlite", "postgresql", "mariadb"]


def _server_database(admin_url: str, engine_name: str) -> Iterator[str]:
    """A fresh database on a server, dropped after the test."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"{engine_name} is not reachable at {sa.make_url(admin_url).render_as_string()}: {error.orig}")
    name = f"dp_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        from dropout_pipeline.storage import database as storage

        for url in [u for u in storage._engines if name in u]:
            storage._engines.pop(url).dispose()
        with admin.connect() as connection:
            if engine_name == "postgresql":
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def database_url_for(engine_name: str, tmp_path: Path) -> Iterator[str]:
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'dropout.db'}"
    elif engine_name == "postgresql":
        yield from _server_database(POSTGRES_ADMIN_URL, "PostgreSQL")
    else:
        yield from _server_database(MARIADB_ADMIN_URL, "MariaDB")


@pytest.fixture(params=ENGINES)
def any_database_url(request, tmp_path) -> Iterator[str]:
    """The same test on SQLite, PostgreSQL and MariaDB."""
    yield from database_url_for(request.param, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'dropout.db'}"


@pytest.fixture
def postgres_url(tmp_path) -> Iterator[str]:
    yield from database_url_for("postgresql", tmp_path)


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    """The small simulated world, served over real HTTP on loopback for the whole session."""
    with simulator_thread(SimulatorState(world=SMALL_WORLD)) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset_simulator(request):
    """Faults, unenrolments and clock moves a test makes never leak into the next one."""
    yield
    if "simulator" in request.fixturenames:
        request.getfixturevalue("simulator").state.reset_disturbances()


def api_resource(simulator: RunningSimulator, **overrides) -> SourceApiResource:
    settings = dict(
        mooc_url=simulator.mooc_url,
        mooc_session_id=DEFAULT_SESSION_ID,
        h5p_url=simulator.h5p_url,
        h5p_token=DEFAULT_TOKEN,
        backoff_initial_seconds=0.01,
    )
    settings.update(overrides)
    return SourceApiResource(**settings)


def clock_on(day: date) -> ClockResource:
    return ClockResource(today=day.isoformat())


def resources_for(simulator: RunningSimulator, database_url: str, models_dir: Path, today: date = TODAY, **settings) -> dict:
    return {
        "database": DatabaseResource(url=database_url),
        "source_api": api_resource(simulator),
        "clock": clock_on(today),
        "settings": PipelineSettings(models_dir=str(models_dir), **settings),
        "alert_webhook": AlertWebhookResource(),
    }


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def course_ids(simulator: RunningSimulator) -> tuple[list[str], list[str]]:
    """(finished, running) course ids of the small world."""
    state = simulator.state
    finished = [c.course_id for c in state.listed_courses() if c.end < TODAY]
    running = [c.course_id for c in state.listed_courses() if c.end >= TODAY]
    return finished, running


@pytest.fixture(scope="session")
def trained_world(simulator, tmp_path_factory) -> dict:
    """A SQLite database where every finished course's history is frozen and both models
    are trained: built once, copied for each test that needs it."""
    from dropout_pipeline.definitions import build_definitions

    folder = tmp_path_factory.mktemp("trained")
    url = f"sqlite:///{folder / 'dropout.db'}"
    resources = resources_for(simulator, url, folder / "models")
    defs = build_definitions(resources)
    finished, running = course_ids(simulator)
    with dg.instance_for_test() as test_instance:
        assert defs.resolve_job_def("discover_courses").execute_in_process(instance=test_instance).success
        for course_id in finished:
            assert defs.resolve_job_def("course_history").execute_in_process(instance=test_instance, partition_key=course_id).success
        assert defs.resolve_job_def("nightly_retrain").execute_in_process(instance=test_instance).success
    return {"folder": folder, "finished": finished, "running": running}


@pytest.fixture
def trained_copy(trained_world, tmp_path) -> dict:
    """A private copy of the trained world's database and models, for one test."""
    shutil.copytree(trained_world["folder"], tmp_path / "trained")
    folder = tmp_path / "trained"
    engine = sa.create_engine(f"sqlite:///{folder / 'dropout.db'}")
    with engine.begin() as connection:  # model paths point into the copy
        connection.execute(
            sa.text("UPDATE model_registry SET model_path = REPLACE(model_path, :old, :new)"),
            {"old": str(trained_world["folder"]), "new": str(folder)},
        )
    engine.dispose()
    return {**trained_world, "folder": folder, "url": f"sqlite:///{folder / 'dropout.db'}", "models": folder / "models"}


SECRET_PATH = "/hooks/T0123/B0456/s3cr3t-webhook-token"  # chat webhooks carry their secret in the path


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[tuple[str, list]]:
    """A chat tool's incoming webhook on loopback: records every POST."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def web_world(simulator, trained_world, tmp_path_factory) -> dict:
    """The trained world made on for the web app's tests (see web_support.build_web_world)."""
    from dropout_pipeline_tests.web_support import build_web_world

    return build_web_world(simulator, trained_world, tmp_path_factory)
