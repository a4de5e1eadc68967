"""Sensors: the course lifecycle (the planner, every minute) and alerts on failed runs."""

import dagster as dg

from dropout_pipeline.alerts import AlertNotDelivered, failure_alert, post_alert
from dropout_pipeline.defs.jobs import course_history_job, course_refresh_job, discover_courses_job, nightly_retrain_job
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import (
    AlertWebhookResource, ClockResource, DatabaseResource, PipelineSettings, SourceApiResource, sensor_interval_seconds,
)
from dropout_pipeline.lifecycle.facts import platform_catalogue
from dropout_pipeline.lifecycle.failures import failure_reason
from dropout_pipeline.lifecycle.plan import Trigger
from dropout_pipeline.lifecycle.runs import claimed_requests, plan_now, release_failed_step


@dg.sensor(
    jobs=[discover_courses_job, course_history_job, nightly_retrain_job, course_refresh_job],
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def course_lifecycle_sensor(
    context: dg.SensorEvaluationContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource, settings: PipelineSettings,
) -> dg.SensorResult:
    """Asks the planner (dropout_pipeline.lifecycle.plan) what today needs now: a course new
    in GET /courses/ is registered; from 06:00 every running course due is refreshed and
    predicted (a new one within a tick); a course that has ended is frozen into training
    data; a new installation trains its first models."""
    now = clock.clock().now()
    catalogue = platform_catalogue(source_api.client_settings(), clock.as_of())
    plan = plan_now(context.instance, database.engine(), catalogue, now.date(), settings.freeze_grace_days)
    day = now.date()
    requests = claimed_requests(database.engine(), plan.runs_for(Trigger.SENSOR, now.time()), day, "sensor")
    new_partitions = [courses_partitions.build_add_request(list(plan.new_partitions))] if plan.new_partitions else []
    if not requests:
        return dg.SensorResult(skip_reason=f"{day}: nothing to launch now; retrain: {plan.retrain_reason}", dynamic_partitions_requests=new_partitions)
    return dg.SensorResult(run_requests=requests, dynamic_partitions_requests=new_partitions)


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=sensor_interval_seconds())
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alert_webhook: AlertWebhookResource, database: DatabaseResource) -> None:
    """Gives the failed run's step back to the planner (tried again tomorrow, or now by
    `dropout-pipeline run`) and posts the failure to DROPOUT_ALERT_WEBHOOK_URL, when set."""
    run = context.dagster_run
    release_failed_step(database.engine(), run)
    if not alert_webhook.url:
        return
    reason = failure_reason(context.get_step_failure_events(), fallback=context.failure_event.message or "run failed")
    try:
        post_alert(alert_webhook.url, failure_alert(run.job_name, run.run_id, run.tags.get("dagster/partition"), reason))
    except AlertNotDelivered as error:
        context.log.warning(str(error))
