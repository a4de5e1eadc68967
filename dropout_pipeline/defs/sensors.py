"""The new-course sensor: a course appears in GET /courses/, and is predicted minutes later."""

import json
import os

import dagster as dg

from dropout_pipeline.defs.jobs import course_history_job, course_refresh_job
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import SourceApiResource
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.ingestion.pull import pull_catalog
from dropout_pipeline.ingestion.rows import utc_naive

POLL_SECONDS = int(os.environ.get("COURSE_SENSOR_INTERVAL_SECONDS", "300"))


@dg.sensor(
    jobs=[course_refresh_job, course_history_job],
    minimum_interval_seconds=POLL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_course_sensor(context: dg.SensorEvaluationContext, source_api: SourceApiResource):
    """Courses not seen before become partitions; a running one gets ingestion, features and
    predictions, a finished one its history and training rows. The cursor remembers every
    course seen, so each is requested once (run keys make a repeat a no-op as well)."""
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    seen |= set(context.instance.get_dynamic_partitions(courses_partitions.name))
    courses, _stats = pull_catalog(source_api.client_settings())
    new = [c for c in courses if c.course_id not in seen]
    if not new:
        return dg.SkipReason(f"no new course among {len(courses)}")
    today = source_api.snapshot_date()
    requests = []
    for course in new:
        finished = CourseCalendar(course.course_id, utc_naive(course.start), utc_naive(course.end)).is_finished(today)
        job = course_history_job if finished else course_refresh_job
        requests.append(dg.RunRequest(run_key=f"new-course-{course.course_id}", partition_key=course.course_id, job_name=job.name))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[courses_partitions.build_add_request([c.course_id for c in new])],
        cursor=json.dumps(sorted(seen | {c.course_id for c in new})),
    )
