"""`POST /courses/{id}/predict` for real: the course's refresh queued on Dagster's instance,
dequeued and run by the real `dagster-daemon` (the README's `-w workspace.yaml`), followed
with `GET /runs/{id}` until it succeeds, its new predictions stored, and the planner
counting it as today's refresh of the course."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import httpx
import sqlalchemy as sa

from dropout_pipeline.defs.resources import PipelineSettings
from dropout_pipeline.lifecycle.facts import catalogue_from_database
from dropout_pipeline.lifecycle.runs import DAY_TAG, STEP_TAG, plan_now
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.web.app import create_app
from dropout_pipeline_tests.conftest import TODAY
from dropout_pipeline_tests.test_deployment import stop_what_the_daemon_left
from dropout_pipeline_tests.web_support import OTHER_ORG_COURSE, RUNNING, instance_home, serving, token, web_settings

REPOSITORY = Path(__file__).parents[1]


def latest_predicted_at(url: str):
    p = schema.predictions
    with engine_for(url).connect() as connection:
        return connection.execute(sa.select(sa.func.max(p.c.predicted_at)).where(p.c.course_id == RUNNING, p.c.is_latest.is_(True))).scalar()


def test_a_requested_refresh_is_queued_run_by_the_daemon_and_followed_to_success(simulator, web_world, tmp_path):
    url = f"sqlite:///{tmp_path / 'product.db'}"
    with sqlite3.connect(sa.make_url(web_world["url"]).database) as source, sqlite3.connect(sa.make_url(url).database) as target:
        source.backup(target)  # the whole world, training rows too: the daemon's planner has nothing else to do
    home = instance_home(tmp_path)
    teacher = token(url, "teacher", "Tuan Teacher", orgs=["UEL"])
    stranger = token(url, "teacher", "Hoa Other", orgs=["DHQG-HCM"])
    before = latest_predicted_at(url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        with engine_for(url).connect() as connection:
            instance.add_dynamic_partitions("courses", [entry.calendar.course_id for entry in catalogue_from_database(connection)])
        with serving(create_app(web_settings(url), instance)) as base:
            as_teacher = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {teacher}"}, timeout=120)
            first = as_teacher.post(f"/api/v1/courses/{quote(RUNNING, safe='')}/predict")
            assert first.status_code == 202, first.text
            run_id = first.json()["run_id"]
            assert first.json()["queued"] is True and first.json()["status_url"] == f"/api/v1/runs/{run_id}"
            again = as_teacher.post(f"/api/v1/courses/{quote(RUNNING, safe='')}/predict")
            assert again.status_code == 202 and again.json() == {**first.json(), "queued": False}  # one refresh, not two
            queued = as_teacher.get(f"/api/v1/runs/{run_id}").json()
            assert queued["status"] == "QUEUED" and queued["course_id"] == RUNNING and queued["requested_by"] == "Tuan Teacher"
            assert httpx.get(f"{base}/api/v1/runs/{run_id}", headers={"Authorization": f"Bearer {stranger}"}).status_code == 403
            run = instance.get_run_by_id(run_id)
            assert run.job_name == "course_refresh" and run.tags["dagster/partition"] == RUNNING
            assert run.tags[DAY_TAG] == TODAY.isoformat() and run.tags[STEP_TAG] == f"refresh-{TODAY}-{RUNNING}"

            env = {
                **os.environ, "DAGSTER_HOME": str(home), "DROPOUT_DB_URL": url, "DROPOUT_MODELS_DIR": str(web_world["models"]),
                "MOOC_API_URL": simulator.mooc_url, "MOOC_API_SESSIONID": simulator.state.session_id,
                "H5P_API_URL": simulator.h5p_url, "H5P_API_TOKEN": simulator.state.token, "DROPOUT_TODAY": f"{TODAY}T12:00",
                "COURSE_SENSOR_INTERVAL_SECONDS": "3600",
            }
            log = open(tmp_path / "daemon.log", "w")
            daemon = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                      cwd=REPOSITORY, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                started, status = time.monotonic(), queued
                while time.monotonic() - started < 300 and not status["finished"]:
                    time.sleep(1)
                    status = as_teacher.get(f"/api/v1/runs/{run_id}").json()
                assert status["status"] == "SUCCESS", (status, (tmp_path / "daemon.log").read_text()[-3000:])
                assert status["started_at"] and status["ended_at"] and status["failure"] is None
            finally:
                os.killpg(daemon.pid, signal.SIGTERM)
                daemon.wait(timeout=30)
                stop_what_the_daemon_left(daemon.pid)
                log.close()
            as_teacher.close()
        assert latest_predicted_at(url) > before
        plan = plan_now(instance, engine_for(url), catalogue_from_database(engine_for(url).connect()), TODAY, PipelineSettings().freeze_grace_days)
        step = next(s for s in plan.courses if s.course_id == RUNNING)
        assert step.reason in ("predicted today", "refresh done today"), step
        assert not [r for r in plan.runs if r.partition_key == RUNNING]  # the daemon's sensor will not refresh it again today
        launched = [r for r in instance.get_runs() if r.job_name == "course_refresh" and r.tags.get("dagster/partition") == RUNNING]
        assert [r.run_id for r in launched] == [run_id]  # (courses other tests published in the simulator may have had theirs)


def test_a_course_that_cannot_be_refreshed_says_why(web_world, tmp_path):
    url = f"sqlite:///{tmp_path / 'product.db'}"
    with sqlite3.connect(sa.make_url(web_world["url"]).database) as source, sqlite3.connect(sa.make_url(url).database) as target:
        source.backup(target)
    admin = token(url, "admin", "Ada Admin")
    with dg.DagsterInstance.from_config(str(instance_home(tmp_path))) as instance, serving(create_app(web_settings(url), instance)) as base:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
        finished = client.post(f"/api/v1/courses/{quote(OTHER_ORG_COURSE, safe='')}/predict")
        assert finished.status_code == 409 and finished.json()["detail"] == "the course is finished: only a running course is refreshed"
        unregistered = client.post(f"/api/v1/courses/{quote(RUNNING, safe='')}/predict")  # this instance has no partition for it
        assert unregistered.status_code == 409 and "not registered as a partition" in unregistered.json()["detail"]
        assert instance.get_runs() == []
        client.close()
