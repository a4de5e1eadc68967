"""Schedules: the 02:00 retrain and the 06:00 refresh, each launching what the planner says.

Times are local to DROPOUT_TIMEZONE (default Asia/Ho_Chi_Minh, which has no daylight
saving, so 02:00 happens exactly once every day). Retraining comes first so the morning
refresh scores with the night's model; the night's freezes (lifecycle sensor, just after
midnight) come before both.
"""

import dagster as dg

from dropout_pipeline.defs.jobs import course_refresh_job, nightly_retrain_job
from dropout_pipeline.defs.resources import ClockResource, DatabaseResource, product_timezone
from dropout_pipeline.lifecycle.facts import catalogue_from_database
from dropout_pipeline.lifecycle.plan import Trigger
from dropout_pipeline.lifecycle.runs import plan_now, run_request

RETRAIN_HOUR = 2
REFRESH_HOUR = 6


def _launch(context: dg.ScheduleEvaluationContext, clock: ClockResource, database: DatabaseResource, trigger: Trigger):
    day = clock.clock().now(at=context.scheduled_execution_time).date()
    engine = database.engine()
    with engine.connect() as connection:
        catalogue = catalogue_from_database(connection)
    plan = plan_now(context.instance, engine, catalogue, day)
    runs = plan.runs_for(trigger)
    if not runs:
        return dg.SkipReason(f"{day}: {plan.retrain_reason}" if trigger is Trigger.NIGHTLY else f"{day}: no running course is due for a refresh")
    return [run_request(run, day) for run in runs]


@dg.schedule(
    cron_schedule=f"0 {RETRAIN_HOUR} * * *",
    job=nightly_retrain_job,
    execution_timezone=product_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(context: dg.ScheduleEvaluationContext, clock: ClockResource, database: DatabaseResource):
    """Retrain when rows were frozen since the models were last trained."""
    return _launch(context, clock, database, Trigger.NIGHTLY)


@dg.schedule(
    cron_schedule=f"0 {REFRESH_HOUR} * * *",
    job=course_refresh_job,
    execution_timezone=product_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_course_refresh_schedule(context: dg.ScheduleEvaluationContext, clock: ClockResource, database: DatabaseResource):
    """Refresh and predict every running course due today (course_model_mapping honoured)."""
    return _launch(context, clock, database, Trigger.MORNING)
