"""Ingestion assets: one per raw table, partitioned by course.

A course's data is asked `as_of` the day a refresh today scores: yesterday, the last day
that has ended (ClockResource.scored_day; the feature dictionary's one moment per row).
The catalogue is asked for today: which courses exist now.

Each pull is fetched and validated completely in memory, then swapped in within one
transaction: a failed or malformed pull leaves the course's previous data intact. A
learner who unenrolled between the enrolment pull and their H5P calls answers 404:
left out of that pull and counted in its metadata (`learners_not_found`), not fatal.
"""

from datetime import timedelta

import dagster as dg

from dropout_pipeline.clock import utc_now
from dropout_pipeline.dagster_metadata import pull_metadata
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import ClockResource, DatabaseResource, SourceApiResource
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.ingestion.pull import find_course, pull_catalog, pull_h5p_tables, pull_mooc_table
from dropout_pipeline.ingestion.rows import course_row
from dropout_pipeline.storage.raw_tables import enrolled_user_ids, read_course, replace_course_tables, upsert_course

GROUP = "ingestion"


@dg.asset(group_name=GROUP, kinds={"sql"})
def course_catalog(
    context: dg.AssetExecutionContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource
) -> dg.MaterializeResult:
    """The platform's courses (GET /courses/), upcoming ones included; each new course
    becomes a `courses` partition."""
    courses, stats = pull_catalog(source_api.client_settings(), clock.as_of())
    rows = [course_row(c, utc_now()) for c in courses]
    with database.engine().begin() as connection:
        for row in rows:
            upsert_course(connection, row)
    known = set(context.instance.get_dynamic_partitions(courses_partitions.name))
    new = [c.course_id for c in courses if c.course_id not in known]
    if new:
        context.instance.add_dynamic_partitions(courses_partitions.name, new)
    return dg.MaterializeResult(metadata={**pull_metadata(rows, stats), "new_courses": dg.MetadataValue.json(new)})


@dg.asset(partitions_def=courses_partitions, group_name=GROUP, kinds={"sql"})
def enrollments(
    context: dg.AssetExecutionContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource
) -> dg.MaterializeResult:
    """Who is enrolled in the course (and the course's calendar, from GET /courses/)."""
    course_id = context.partition_key
    settings = source_api.client_settings()
    catalog, catalog_stats = pull_catalog(settings, clock.as_of())
    course = course_row(find_course(catalog, course_id), utc_now())
    first_refresh = CourseCalendar(course_id, course["start"], course["end"]).first_refresh_day()
    if clock.clock().today() < first_refresh:
        raise dg.Failure(f"{course_id} starts on {first_refresh - timedelta(days=1)}: none of its days has ended, so there is nothing to pull yet (first refresh on {first_refresh})")
    pull = pull_mooc_table(settings, "enrollments", course_id, clock.scored_day())
    with database.engine().begin() as connection:
        upsert_course(connection, course)
        replace_course_tables(connection, course_id, pull.tables)
    pull.stats.calls += catalog_stats.calls
    return dg.MaterializeResult(metadata=pull_metadata(pull.tables["enrollments"], pull.stats))


def _mooc_table_asset(table: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=table, partitions_def=courses_partitions, group_name=GROUP, kinds={"sql"}, description=description)
    def _asset(
        context: dg.AssetExecutionContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource
    ) -> dg.MaterializeResult:
        pull = pull_mooc_table(source_api.client_settings(), table, context.partition_key, clock.scored_day())
        with database.engine().begin() as connection:
            replace_course_tables(connection, context.partition_key, pull.tables)
        return dg.MaterializeResult(metadata=pull_metadata(pull.tables[table], pull.stats))

    return _asset


def _h5p_tables_asset(name: str, tables: tuple[str, ...], description: str) -> dg.AssetsDefinition:
    """Tables filled from one H5P endpoint, one call per enrolled learner, run concurrently."""

    @dg.multi_asset(
        name=name,
        specs=[dg.AssetSpec(t, deps=["enrollments"], group_name=GROUP, kinds={"sql"}, description=description) for t in tables],
        partitions_def=courses_partitions,
    )
    def _asset(context: dg.AssetExecutionContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource):
        course_id = context.partition_key
        with database.engine().connect() as connection:
            if read_course(connection, course_id) is None:
                raise dg.Failure(f"course {course_id} is not stored: materialize `enrollments` for it first")
            user_ids = enrolled_user_ids(connection, course_id)
        pull = pull_h5p_tables(source_api.client_settings(), tables, course_id, user_ids, clock.scored_day())
        with database.engine().begin() as connection:
            replace_course_tables(connection, course_id, pull.tables)
        for table in tables:
            yield dg.MaterializeResult(asset_key=table, metadata=pull_metadata(pull.tables[table], pull.stats))

    return _asset


mooc_grades = _mooc_table_asset("mooc_grades", "Grades so far, with the grade breakdown by section.")
mooc_progress = _mooc_table_asset("mooc_progress", "Blocks completed and last activity.")
mooc_discussions = _mooc_table_asset("mooc_discussions", "Forum activity counts.")
h5p_scores = _h5p_tables_asset("h5p_score_tables", ("h5p_scores", "h5p_scores_summary"), "H5P content scores and their per-learner summary.")
video_progress = _h5p_tables_asset("video_progress_tables", ("video_progress", "video_progress_summary"), "Video watching and its per-learner summary.")
dashboard_summary = _h5p_tables_asset("dashboard_tables", ("dashboard_summary",), "The H5P dashboard's completion counts.")

INGESTION_ASSETS = [course_catalog, enrollments, mooc_grades, mooc_progress, mooc_discussions, h5p_scores, video_progress, dashboard_summary]
