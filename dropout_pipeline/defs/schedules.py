"""The 02:00 retrain, launching what the planner says.

The time (lifecycle.plan.RETRAIN_HOUR) is local to DROPOUT_TIMEZONE (default
Asia/Ho_Chi_Minh, which has no daylight saving, so 02:00 happens exactly once every
day). It comes after the night's freezes (lifecycle sensor, just after midnight) and
before the sensor's 06:00 refreshes, which score with the night's model.
"""

import dagster as dg

from dropout_pipeline.defs.jobs import nightly_retrain_job
from dropout_pipeline.defs.resources import ClockResource, DatabaseResource, PipelineSettings, product_timezone
from dropout_pipeline.lifecycle.facts import catalogue_from_database
from dropout_pipeline.lifecycle.plan import RETRAIN_HOUR, Trigger
from dropout_pipeline.lifecycle.runs import claimed_requests, plan_now


@dg.schedule(
    cron_schedule=f"0 {RETRAIN_HOUR} * * *",
    job=nightly_retrain_job,
    execution_timezone=product_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(context: dg.ScheduleEvaluationContext, clock: ClockResource, database: DatabaseResource, settings: PipelineSettings):
    """Retrain when rows were frozen that the newest model did not learn from. Plans from
    the courses stored, so the platform being down at 02:00 does not stop it."""
    now = clock.clock().now(at=context.scheduled_execution_time)
    engine = database.engine()
    with engine.connect() as connection:
        plan = plan_now(context.instance, engine, catalogue_from_database(connection), now.date(), settings.freeze_grace_days)
    requests = claimed_requests(engine, plan.runs_for(Trigger.NIGHTLY, now.time()), plan.day, "schedule")
    return requests or dg.SkipReason(f"{plan.day}: {plan.retrain_reason}")

