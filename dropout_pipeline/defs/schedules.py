"""Schedules: nightly retraining at 02:00 and a daily refresh of running courses.

Times are local to RETRAIN_TIMEZONE (default Asia/Ho_Chi_Minh, which has no daylight
saving, so 02:00 happens exactly once every day).
"""

import os
from datetime import date

import dagster as dg

from dropout_pipeline.defs.jobs import course_refresh_job, nightly_retrain_job
from dropout_pipeline.defs.resources import DatabaseResource
from dropout_pipeline.predictions.refresh import courses_due_for_refresh

TIMEZONE = os.environ.get("RETRAIN_TIMEZONE", "Asia/Ho_Chi_Minh")
RETRAIN_HOUR = 2
REFRESH_HOUR = 6


@dg.schedule(
    cron_schedule=f"0 {RETRAIN_HOUR} * * *",
    job=nightly_retrain_job,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def nightly_retrain_schedule(context: dg.ScheduleEvaluationContext):
    """Retrain every night at 02:00 local time; a tick at any other hour requests nothing."""
    local = context.scheduled_execution_time
    if local.hour != RETRAIN_HOUR:
        return dg.SkipReason(f"retraining runs at {RETRAIN_HOUR:02d}:00 {TIMEZONE}, not {local:%H:%M}")
    return dg.RunRequest(run_key=f"retrain-{local:%Y-%m-%d}", tags={"trigger": "nightly"})


@dg.schedule(
    cron_schedule=f"0 {REFRESH_HOUR} * * *",
    job=course_refresh_job,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_course_refresh_schedule(context: dg.ScheduleEvaluationContext, database: DatabaseResource):
    """Refresh and predict running courses, honouring course_model_mapping.auto_predict and
    predict_frequency (daily, or weekly on Mondays)."""
    today = context.scheduled_execution_time.date() if context.scheduled_execution_time else date.today()
    known = set(context.instance.get_dynamic_partitions("courses"))
    with database.engine().connect() as connection:
        due = [c for c in courses_due_for_refresh(connection, today) if c in known]
    if not due:
        return dg.SkipReason("no running course is due for a refresh today")
    return [dg.RunRequest(run_key=f"refresh-{course_id}-{today}", partition_key=course_id) for course_id in due]
