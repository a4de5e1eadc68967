"""Ingestion assets materialized for real: three engines, atomic replace, clear failures, no leaked secrets."""

import os
import subprocess
import sys

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.lifecycle.failures import root_cause
from dropout_pipeline.defs.ingestion import INGESTION_ASSETS, course_catalog
from dropout_pipeline.defs.resources import DatabaseResource
from dropout_pipeline.simulator.server import Faults
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.conftest import TODAY, api_resource, clock_on, course_ids

PER_COURSE = [a for a in INGESTION_ASSETS if a is not course_catalog]


def ingest(simulator, instance, database_url, course_id, **api):
    resources = {"database": DatabaseResource(url=database_url), "source_api": api_resource(simulator, **api), "clock": clock_on(TODAY)}
    instance.add_dynamic_partitions("courses", [course_id])
    return dg.materialize(PER_COURSE, instance=instance, resources=resources, partition_key=course_id, raise_on_error=False)


def table_counts(database_url: str, course_id: str) -> dict[str, int]:
    with engine_for(database_url).connect() as connection:
        return {
            name: connection.execute(sa.select(sa.func.count()).select_from(table).where(table.c.course_id == course_id)).scalar()
            for name, table in schema.RAW_TABLES.items()
        }


def test_a_course_is_ingested_into_every_table_on_every_engine(simulator, instance, any_database_url):
    course_id = course_ids(simulator)[1][0]
    result = ingest(simulator, instance, any_database_url, course_id)
    assert result.success
    learners = len(simulator.state.learners(course_id).user_ids)
    counts = table_counts(any_database_url, course_id)
    enrolled = counts["enrollments"]
    assert 0 < enrolled <= learners
    for name in ("mooc_grades", "mooc_progress", "mooc_discussions", "h5p_scores_summary", "video_progress_summary", "dashboard_summary"):
        assert counts[name] == enrolled, name
    assert counts["h5p_scores"] > enrolled and counts["video_progress"] > 0
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["dashboard_summary"]["api_calls"].value == enrolled
    assert metadata["enrollments"]["dagster/row_count"].value == enrolled
    assert "email" not in metadata["enrollments"]["preview"].value  # no personal data in the UI


def test_a_pull_that_fails_midway_leaves_the_previous_data_intact(simulator, instance, sqlite_url):
    course_id = course_ids(simulator)[1][0]
    assert ingest(simulator, instance, sqlite_url, course_id).success
    stored = lambda: {  # noqa: E731
        name: connection.execute(sa.select(table).order_by(table.c.id)).all()
        for name, table in (("h5p_scores", schema.h5p_scores), ("h5p_scores_summary", schema.h5p_scores_summary))
    }
    with engine_for(sqlite_url).connect() as connection:
        before = stored()
    # The H5P scores pull goes well for 20 learners, then every body lacks a required field.
    simulator.state.set_faults(Faults(malformed_rate=1.0, malformed_kind="field", path_prefix="/h5p/scores/", after_requests=20))
    result = ingest(simulator, instance, sqlite_url, course_id)
    assert not result.success
    failed = {e.step_key: root_cause(e.step_failure_data.error) for e in result.all_events if e.is_step_failure}
    assert list(failed) == ["h5p_score_tables"]
    assert "H5P API /scores/" in failed["h5p_score_tables"] and "does not follow the contract: user_id: Field required" in failed["h5p_score_tables"]
    with engine_for(sqlite_url).connect() as connection:
        assert stored() == before


def test_an_unknown_course_fails_clearly(simulator, instance, sqlite_url):
    result = ingest(simulator, instance, sqlite_url, "course-v1:NOBODY+NOTHING+2026_S1")
    assert not result.success
    message = root_cause(next(e for e in result.all_events if e.is_step_failure).step_failure_data.error)
    assert "course 'course-v1:NOBODY+NOTHING+2026_S1' is not in the platform's course list" in message


def test_discovery_registers_every_course_as_a_partition(simulator, instance, sqlite_url):
    resources = {"database": DatabaseResource(url=sqlite_url), "source_api": api_resource(simulator), "clock": clock_on(TODAY)}
    assert dg.materialize([course_catalog], instance=instance, resources=resources).success
    assert set(instance.get_dynamic_partitions("courses")) == {c.course_id for c in simulator.state.listed_courses()}


def test_secrets_from_the_environment_never_reach_the_event_log(simulator, sqlite_url, monkeypatch):
    from dropout_pipeline.defs.resources import build_resources

    course_id = course_ids(simulator)[1][0]
    session, token = simulator.state.session_id, simulator.state.token
    monkeypatch.setenv("MOOC_API_URL", simulator.mooc_url)
    monkeypatch.setenv("MOOC_API_SESSIONID", session)
    monkeypatch.setenv("H5P_API_URL", simulator.h5p_url)
    monkeypatch.setenv("H5P_API_TOKEN", token)
    monkeypatch.setenv("SOURCE_API_MAX_RETRIES", "0")  # the failing run below should fail fast
    resources = build_resources()
    resources["database"] = DatabaseResource(url=sqlite_url)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("courses", [course_id])
        assert dg.materialize(PER_COURSE, instance=instance, resources=resources, partition_key=course_id).success
        simulator.state.set_faults(Faults(error_rate=1.0))  # a failure's error message must not carry it either
        failed = dg.materialize(PER_COURSE, instance=instance, resources=resources, partition_key=course_id, raise_on_error=False)
        assert not failed.success
        records = [record for run in instance.get_runs() for record in instance.all_logs(run.run_id)]
        text = "\n".join(str(record) for record in records)
    assert len(records) > 20
    assert session not in text and token not in text


def test_dagster_cli_materializes_one_partition(simulator, tmp_path, instance):
    course_id = course_ids(simulator)[1][0]
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DROPOUT_DB_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MOOC_API_URL": simulator.mooc_url,
        "MOOC_API_SESSIONID": simulator.state.session_id,
        "H5P_API_URL": simulator.h5p_url,
        "H5P_API_TOKEN": simulator.state.token,
    }
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    subprocess.run([dagster, "instance", "migrate"], env=env, check=True, capture_output=True)
    code = f"import dagster as dg; dg.DagsterInstance.get().add_dynamic_partitions('courses', [{course_id!r}])"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    done = subprocess.run(
        [dagster, "asset", "materialize", "-m", "dropout_pipeline.definitions", "--select", "enrollments", "--partition", course_id],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert table_counts(env["DROPOUT_DB_URL"], course_id)["enrollments"] > 0


H5P_TABLES = ["h5p_scores", "h5p_scores_summary", "video_progress", "video_progress_summary", "dashboard_summary"]


def enrol_then_pull_h5p(simulator, instance, database_url, course_id, leavers: int):
    """The enrolment list is read, then `leavers` learners unenrol, then the H5P calls are made."""
    assert ingest(simulator, instance, database_url, course_id).success
    with engine_for(database_url).connect() as connection:
        enrolled = connection.execute(sa.select(schema.enrollments.c.user_id).where(schema.enrollments.c.course_id == course_id)).scalars().all()
    for user_id in enrolled[:leavers]:
        simulator.control("unenrolments", {"course_id": course_id, "user_id": user_id})
    resources = {"database": DatabaseResource(url=database_url), "source_api": api_resource(simulator), "clock": clock_on(TODAY)}
    result = dg.materialize(PER_COURSE, selection=H5P_TABLES, instance=instance, resources=resources, partition_key=course_id, raise_on_error=False)
    return result, enrolled


def test_a_learner_who_unenrols_between_the_enrolment_pull_and_the_h5p_calls_is_recorded_not_fatal(simulator, instance, sqlite_url):
    course_id = course_ids(simulator)[1][0]
    result, enrolled = enrol_then_pull_h5p(simulator, instance, sqlite_url, course_id, leavers=1)
    assert result.success
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    for table in ("h5p_scores_summary", "video_progress_summary", "dashboard_summary"):
        assert metadata[table]["learners_not_found"].value == 1 and metadata[table]["learners_not_found_sample"].value == [enrolled[0]]
    counts = table_counts(sqlite_url, course_id)
    assert counts["dashboard_summary"] == counts["h5p_scores_summary"] == len(enrolled) - 1


def test_a_course_most_of_whose_learners_answer_404_fails_clearly_and_keeps_its_data(simulator, instance, sqlite_url):
    course_id = course_ids(simulator)[1][0]
    assert ingest(simulator, instance, sqlite_url, course_id).success
    before = table_counts(sqlite_url, course_id)  # the pull below reads the same enrolments first
    result, enrolled = enrol_then_pull_h5p(simulator, instance, sqlite_url, course_id, leavers=10_000)  # everyone
    assert not result.success
    messages = {root_cause(e.step_failure_data.error) for e in result.all_events if e.is_step_failure}
    assert all(f"{len(enrolled)} of {len(enrolled)} enrolled learners of {course_id} answered 404" in m for m in messages), messages
    assert table_counts(sqlite_url, course_id) == before
