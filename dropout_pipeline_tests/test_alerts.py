"""Failed runs reach people: the run-failure sensor posts them to DROPOUT_ALERT_WEBHOOK_URL."""

import dagster as dg
import pytest

from dropout_pipeline.alerts import AlertNotDelivered, failure_alert, post_alert
from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.defs.resources import AlertWebhookResource, DatabaseResource
from dropout_pipeline.defs.sensors import run_failure_alert_sensor
from dropout_pipeline.simulator.runner import free_port
from dropout_pipeline_tests.conftest import SECRET_PATH, resources_for, webhook_receiver


def failed_refresh(simulator, sqlite_url, tmp_path, instance) -> tuple[dg.ExecuteInProcessResult, str]:
    course_id = "course-v1:GONE+NOWHERE+2026_S2"
    instance.add_dynamic_partitions("courses", [course_id])
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    result = defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id, raise_on_error=False)
    assert not result.success
    return result, course_id


def test_a_failed_run_is_posted_to_the_webhook_with_its_reason(simulator, sqlite_url, tmp_path):
    with webhook_receiver() as (base_url, received), dg.instance_for_test() as instance:
        failed, course_id = failed_refresh(simulator, sqlite_url, tmp_path, instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=failed.dagster_run,
            resources={"alert_webhook": AlertWebhookResource(url=base_url + SECRET_PATH), "database": DatabaseResource(url=sqlite_url)},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    [(path, alert)] = received
    assert path == SECRET_PATH
    assert (alert["job"], alert["partition"], alert["run_id"]) == ("course_refresh", course_id, failed.run_id)
    assert alert["reason"].startswith(f"enrollments: MOOC API /courses/: course {course_id!r} is not in the platform's course list; mooc_")
    assert alert["text"] == f"dropout_pipeline: run {failed.run_id[:8]} of course_refresh for {course_id} failed: {alert['reason']}"


def test_without_a_webhook_nothing_is_posted(simulator, sqlite_url, tmp_path):
    with webhook_receiver() as (_base_url, received), dg.instance_for_test() as instance:
        failed, _course_id = failed_refresh(simulator, sqlite_url, tmp_path, instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor", dagster_event=failed.get_run_failure_event(), dagster_instance=instance,
            dagster_run=failed.dagster_run, resources={"alert_webhook": AlertWebhookResource(), "database": DatabaseResource(url=sqlite_url)},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    assert received == []


@pytest.mark.parametrize("status", [404, 500])
def test_an_alert_the_webhook_refuses_says_so_without_the_secret_url(status):
    with webhook_receiver(status) as (base_url, _received):
        with pytest.raises(AlertNotDelivered) as refused:
            post_alert(base_url + SECRET_PATH, failure_alert("nightly_retrain", "0123456789", None, "boom"))
    assert str(refused.value) == f"the alert webhook answered {status}"
    with pytest.raises(AlertNotDelivered) as unreachable:
        post_alert(f"http://127.0.0.1:{free_port()}{SECRET_PATH}", failure_alert("nightly_retrain", "0123456789", None, "boom"), timeout_seconds=2)
    assert "s3cr3t" not in str(unreachable.value) and "could not be reached" in str(unreachable.value)
