"""The web app's test world and server, shared by the test_web_* modules (conftest.py's
`web_world` fixture builds the world here).

The world is the trained world (finished courses frozen, models trained) made on with the
real pipeline: the models retrained once more on a Dagster instance the app reads (so v2's
materialization, with its calibration table, is there), the running course refreshed on
three days a week apart (a timeline with a change since last week), and one learner who
enrolled after the latest refresh (listed, never scored). Its rows are copied into each
engine's database through the storage layer; the app is served by uvicorn in a thread, on
a free port of loopback.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import sqlalchemy as sa
import uvicorn

from dropout_pipeline.clock import Clock
from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, engine_for
from dropout_pipeline.storage.web_tables import create_token
from dropout_pipeline.web.app import create_app
from dropout_pipeline.web.settings import WebSettings
from dropout_pipeline_tests.conftest import TODAY, database_url_for, resources_for

RUNNING = "course-v1:UEL+AC102+2026_S2"  # the small world's running course (org UEL)
OTHER_ORG_COURSE = "course-v1:DHQG-HCM+DS201+2026_S1"  # finished, another organisation
REFRESH_DAYS = (TODAY - timedelta(days=14), TODAY - timedelta(days=7), TODAY)
LATE_LEARNER = 990001  # enrolled after the latest refresh: listed, not predicted
FORMULA_NAME = '=HYPERLINK("http://example.invalid","click")'
COPIED_TABLES = (
    schema.courses, schema.enrollments, schema.student_features, schema.model_registry, schema.model_performance,
    schema.course_model_mapping, schema.predictions,
)


def instance_home(folder: Path) -> Path:
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def build_web_world(simulator, trained_world, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("web") / "world"
    shutil.copytree(trained_world["folder"], folder)
    url = f"sqlite:///{folder / 'dropout.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # model paths point into the copy
        connection.execute(sa.text("UPDATE model_registry SET model_path = REPLACE(model_path, :old, :new)"),
                           {"old": str(trained_world["folder"]), "new": str(folder)})
    engine.dispose()
    home = instance_home(folder)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("courses", [*trained_world["finished"], *trained_world["running"]])
        defs = build_definitions(resources_for(simulator, url, folder / "models"))
        assert defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance).success
        for day in REFRESH_DAYS:
            defs = build_definitions(resources_for(simulator, url, folder / "models", today=day))
            assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=RUNNING).success
    with engine_for(url).begin() as connection:
        template = dict(connection.execute(sa.select(schema.enrollments).where(schema.enrollments.c.course_id == RUNNING)).mappings().first())
        late = {**template, "user_id": LATE_LEARNER, "enrollment_id": LATE_LEARNER, "username": "+late_user", "full_name": FORMULA_NAME,
                "email": "@late.example.invalid", "created": datetime(2026, 11, 22, 9, 0)}
        late.pop("id")
        bulk_insert(connection, schema.enrollments, [late])
    return {"folder": folder, "url": url, "home": home, "models": folder / "models", **{k: trained_world[k] for k in ("finished", "running")}}


def copy_world(source_url: str, target_url: str) -> None:
    """The web's tables of a world, row for row (ids kept), into a fresh database."""
    source, target = engine_for(source_url), engine_for(target_url)
    with source.connect() as reading, target.begin() as writing:
        for table in COPIED_TABLES:
            rows = [dict(row) for row in reading.execute(sa.select(table)).mappings()]
            bulk_insert(writing, table, rows)
        if writing.dialect.name == "postgresql":  # ids were copied: move the sequences past them
            for table in COPIED_TABLES:
                if "id" in table.c:
                    writing.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), COALESCE(MAX(id), 1)) FROM {table.name}"))


@contextmanager
def serving(app) -> Iterator[str]:
    """The app on uvicorn in a thread, on a free loopback port; its base URL."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    started = time.monotonic()
    while not server.started:
        if time.monotonic() - started > 30 or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def web_settings(url: str) -> WebSettings:
    return WebSettings(database_url=url, clock=Clock("Asia/Ho_Chi_Minh", TODAY))


def token(url: str, role: str, name: str, courses=(), orgs=()) -> str:
    with engine_for(url).begin() as connection:
        return create_token(connection, name, role, datetime.now(), courses, orgs)[1]


@contextmanager
def running_app(world: dict, engine_name: str, folder: Path) -> Iterator[dict]:
    """The world on one engine, served: base URL, database URL, and a client per role."""
    databases = database_url_for(engine_name, folder)
    url = next(databases)
    try:
        copy_world(world["url"], url)
        tokens = {
            "admin": token(url, "admin", "Ada Admin"),
            "teacher": token(url, "teacher", "Tuan Teacher", orgs=["UEL"]),
            "course_teacher": token(url, "teacher", "Chi Course", courses=[RUNNING]),
            "other_teacher": token(url, "teacher", "Hoa Other", orgs=["DHQG-HCM"]),
        }
        with dg.DagsterInstance.from_config(str(world["home"])) as instance, serving(create_app(web_settings(url), instance)) as base:
            clients = {role: httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=60) for role, secret in tokens.items()}
            try:
                yield {"base": base, "url": url, "tokens": tokens, "clients": clients, "engine": engine_name}
            finally:
                for client in clients.values():
                    client.close()
    finally:
        databases.close()
