"""Schedules: the 02:00 retrain and the 06:00 refresh, each launching what the planner says.

Times (lifecycle.plan: RETRAIN_HOUR, REFRESH_HOUR) are local to DROPOUT_TIMEZONE
(default Asia/Ho_Chi_Minh, which has no daylight saving, so 02:00 happens exactly once
every day). Retraining comes first so the morning refresh scores with the night's model;
the night's freezes (lifecycle sensor, just after midnight) come before both.
"""

from datetime import datetime

import dagster as dg

from dropout_pipeline.defs.jobs import course_refresh_job, nightly_retrain_job
from dropout_pipeline.defs.resources import ClockResource, DatabaseResource, SourceApiResource, product_timezone
from dropout_pipeline.lifecycle.facts import catalogue_from_database, platform_catalogue
from dropout_pipeline.lifecycle.plan import REFRESH_HOUR, RETRAIN_HOUR, Plan, Trigger
from dropout_pipeline.lifecycle.runs import plan_now, run_request


def _launch(plan: Plan, trigger: Trigger, now: datetime, skip: str):
    return [run_request(run, plan.day) for run in plan.runs_for(trigger, now.time())] or dg.SkipReason(f"{plan.day}: {skip}")


@dg.schedule(
    cron_schedule=f"0 {RETRAIN_HOUR} * * *",
    job=nightly_retrain_job,
    execution_timezone=product_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(context: dg.ScheduleEvaluationContext, clock: ClockResource, database: DatabaseResource):
    """Retrain when rows were frozen that the newest model did not learn from. Plans from
    the courses stored, so the platform being down at 02:00 does not stop it."""
    now = clock.clock().now(at=context.scheduled_execution_time)
    engine = database.engine()
    with engine.connect() as connection:
        plan = plan_now(context.instance, engine, catalogue_from_database(connection), now.date())
    return _launch(plan, Trigger.NIGHTLY, now, plan.retrain_reason)


@dg.schedule(
    cron_schedule=f"0 {REFRESH_HOUR} * * *",
    job=course_refresh_job,
    execution_timezone=product_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_course_refresh_schedule(
    context: dg.ScheduleEvaluationContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource
):
    """Refresh and predict every running course due today (course_model_mapping honoured),
    as the platform lists them now."""
    now = clock.clock().now(at=context.scheduled_execution_time)
    plan = plan_now(context.instance, database.engine(), platform_catalogue(source_api.client_settings(), clock.as_of()), now.date())
    return _launch(plan, Trigger.MORNING, now, "no running course is due for a refresh")
