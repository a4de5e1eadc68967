"""Feature assets: current student_features, the replayed history, and frozen training_data."""

import dagster as dg
import pandas as pd

from dropout_pipeline.clock import utc_now
from dropout_pipeline.dagster_metadata import check_result, preview
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.defs.resources import ClockResource, DatabaseResource, PipelineSettings, SourceApiResource
from dropout_pipeline.features import validation
from dropout_pipeline.features.build import INPUT_COLUMNS, build_features
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.features.labels import grades_read_on, snapshot_plan, training_rows, training_weeks, weeks_with_learners
from dropout_pipeline.features.replay import AsOfIgnored, replay_course
from dropout_pipeline.storage import schema
from dropout_pipeline.lifecycle.plan import FROZEN, NOTHING_TO_LEARN
from dropout_pipeline.storage.feature_tables import insert_new_training_rows, read_history, replace_current_features, replace_snapshot
from dropout_pipeline.storage.lifecycle_tables import record_freeze
from dropout_pipeline.storage.raw_tables import RAW_TABLE_NAMES, first_enrolment_in, read_course, read_raw_columns

GROUP = "features"
STALE_AFTER_HOURS = 36


def _calendar(database: DatabaseResource, course_id: str) -> tuple[dict, CourseCalendar]:
    with database.engine().connect() as connection:
        course = read_course(connection, course_id)
    if course is None:
        raise dg.Failure(f"course {course_id} is not stored: materialize `enrollments` for it first")
    return course, CourseCalendar(course_id, course["start"], course["end"])


@dg.asset(
    partitions_def=courses_partitions,
    group_name=GROUP,
    kinds={"sql", "pandas"},
    deps=RAW_TABLE_NAMES,
    check_specs=[
        dg.AssetCheckSpec("schema_and_ranges", asset="student_features", blocking=True, description="types, value ranges, unique (user_id, course_id)"),
        dg.AssetCheckSpec("every_enrolled_learner_present", asset="student_features", blocking=True),
        dg.AssetCheckSpec("null_rates", asset="student_features", description="nullable features under 95% null, others never null"),
        dg.AssetCheckSpec("built_from_fresh_data", asset="student_features", description=f"raw data pulled within {STALE_AFTER_HOURS}h"),
    ],
)
def student_features(context: dg.AssetExecutionContext, clock: ClockResource, database: DatabaseResource) -> dg.MaterializeResult:
    """One row per enrolled learner of the course with every documented feature, as of the
    end of yesterday (the last day that has ended: what a training row of that snapshot date
    means too; the ingestion asked the platform `as_of` it). Also records them in
    `student_features_daily`: what this day's predictions saw (never training data: that
    comes only from the replay)."""
    course_id = context.partition_key
    course, calendar = _calendar(database, course_id)
    snapshot_date = clock.scored_day()
    if snapshot_date < calendar.start_date:
        raise dg.Failure(f"{course_id} starts on {calendar.start_date}: none of its days has ended, so there is nothing to score yet (first refresh on {calendar.first_refresh_day()})")
    with database.engine().connect() as connection:
        tables = read_raw_columns(connection, INPUT_COLUMNS, course_id)
    features = build_features(tables, pd.DataFrame([course]), snapshot_date)
    now = utc_now()
    with database.engine().begin() as connection:
        replace_current_features(connection, course_id, features, now)
        replace_snapshot(connection, schema.student_features_daily, course_id, features, calendar.week_of(snapshot_date), now)

    fetched = tables["enrollments"]["fetched_at"].min() if len(tables["enrollments"]) else None
    age_hours = (now - pd.Timestamp(fetched).to_pydatetime()).total_seconds() / 3600 if fetched is not None else None
    freshness = validation.CheckOutcome(
        age_hours is not None and age_hours <= STALE_AFTER_HOURS,
        f"raw data is {age_hours:.1f}h old" if age_hours is not None else "no raw data",
        {"raw_data_age_hours": round(age_hours, 2) if age_hours is not None else None},
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(len(features)),
            "snapshot_date": dg.MetadataValue.text(snapshot_date.isoformat()),
            "course_week": dg.MetadataValue.int(calendar.week_of(snapshot_date)),
            "null_rate_per_feature": dg.MetadataValue.json(validation.null_rates(features)),
            "preview": preview(features),
        },
        check_results=[
            check_result("schema_and_ranges", validation.validate_features(features)),
            check_result("every_enrolled_learner_present", validation.every_learner_present(features, tables["enrollments"]["user_id"])),
            check_result("null_rates", validation.null_rates_acceptable(features), dg.AssetCheckSeverity.WARN),
            check_result("built_from_fresh_data", freshness, dg.AssetCheckSeverity.WARN),
        ],
    )


@dg.asset(partitions_def=courses_partitions, group_name=GROUP, kinds={"sql", "pandas"}, deps=["enrollments"])
def student_feature_history(
    context: dg.AssetExecutionContext, source_api: SourceApiResource, clock: ClockResource, database: DatabaseResource,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    """The course's feature snapshots rebuilt by replaying the APIs `as_of` days 1, 4 and 7
    of every course week (and the end date and the last day of the grace period after it,
    whose snapshots give the final outcomes).

    Needs a platform that honours `as_of`: each endpoint's answers are checked (the day
    before the start is asked too, as a witness), and if any one ignored it, the replay
    fails naming it and nothing is written. All snapshots are written in one transaction.
    """
    course_id = context.partition_key
    course, calendar = _calendar(database, course_id)
    dates = snapshot_plan(calendar, clock.clock().today(), settings.freeze_grace_days)
    if not dates:
        return dg.MaterializeResult(metadata={"snapshots": 0, "note": "the course has not completed a week yet"})
    try:
        replay = replay_course(source_api.client_settings(), course, calendar, dates, context.log.info)
    except AsOfIgnored as ignored:
        raise dg.Failure(
            f"{ignored}: no history of {course_id} was written",
            metadata={endpoint: dg.MetadataValue.text(why) for endpoint, why in ignored.endpoints.items()},
        ) from None
    now = utc_now()
    with database.engine().begin() as connection:
        for day, features in replay.snapshots:
            replace_snapshot(connection, schema.student_features_history, course_id, features, calendar.week_of(day), now)
    return dg.MaterializeResult(
        metadata={
            "snapshots": dg.MetadataValue.int(len(dates)),
            "dagster/row_count": dg.MetadataValue.int(sum(len(features) for _day, features in replay.snapshots)),
            "first_snapshot": dg.MetadataValue.text(dates[0].isoformat()),
            "last_snapshot": dg.MetadataValue.text(dates[-1].isoformat()),
            "api_calls": dg.MetadataValue.int(replay.calls),
            "retries": dg.MetadataValue.int(replay.retries),
        }
    )


@dg.asset(
    partitions_def=courses_partitions,
    group_name=GROUP,
    kinds={"sql", "pandas"},
    deps=[student_feature_history],
    check_specs=[
        dg.AssetCheckSpec("schema_and_labels", asset="training_data", blocking=True, description="features in range, labels never null, one row per learner and week"),
        dg.AssetCheckSpec("every_week_covered", asset="training_data", blocking=True, description="rows for every course week before the end"),
        dg.AssetCheckSpec("label_balance", asset="training_data", description="share of passed and dropped-out learners"),
    ],
)
def training_data(
    context: dg.AssetExecutionContext, clock: ClockResource, database: DatabaseResource, settings: PipelineSettings
) -> dg.MaterializeResult:
    """Labelled snapshots of a finished course (days 1, 4 and 7 of every week), frozen:
    insert-only, enforced by the database. Built from the replayed history only. Rebuilding adds only rows not
    frozen yet. Rows that fail a check are not inserted at all (nothing immutable is
    ever written wrong)."""
    course_id = context.partition_key
    _course, calendar = _calendar(database, course_id)
    if not calendar.is_finished(clock.clock().today()):
        nothing = validation.CheckOutcome(True, "course still running: nothing to freeze")
        return dg.MaterializeResult(
            metadata={"rows_added": 0, "note": "course still running"},
            check_results=[check_result(name, nothing) for name in ("schema_and_labels", "every_week_covered", "label_balance")],
        )
    with database.engine().connect() as connection:
        history = read_history(connection, course_id)
        first_enrolment = first_enrolment_in(connection, course_id)
    if history.empty:
        return _nothing_to_learn(database, calendar, "no learner's history could be replayed: nobody enrolled, or the course never completed a week")
    try:
        grades_on = grades_read_on(calendar, clock.clock().today(), settings.freeze_grace_days)
        rows = training_rows(history, calendar, settings.dropout_inactive_days, utc_now(), grades_on)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    if rows.empty:
        return _nothing_to_learn(database, calendar, "no snapshot before its end: the course is shorter than a week")
    schema_outcome = validation.validate_training_rows(rows)
    coverage = validation.every_week_covered(rows, training_weeks(calendar), weeks_with_learners(calendar, first_enrolment))
    added = 0
    if schema_outcome.passed and coverage.passed:
        with database.engine().begin() as connection:
            added = insert_new_training_rows(connection, rows)
            record_freeze(connection, course_id, calendar.end, FROZEN, len(rows), None, utc_now())
    context.log.info(f"{course_id}: {added} new training rows ({len(rows)} candidates)")
    balance = validation.label_balance(rows)
    return dg.MaterializeResult(
        metadata={
            "rows_added": dg.MetadataValue.int(added),
            "dagster/row_count": dg.MetadataValue.int(len(rows)),
            "semester": dg.MetadataValue.text(calendar.semester),
            "snapshot_weeks": dg.MetadataValue.int(int(rows["snapshot_week"].nunique())),
            "label_balance": dg.MetadataValue.json(balance.metadata["positive_share"]),
            "preview": preview(rows),
        },
        check_results=[
            check_result("schema_and_labels", schema_outcome),
            check_result("every_week_covered", coverage),
            check_result("label_balance", balance, dg.AssetCheckSeverity.WARN),
        ],
    )


def _nothing_to_learn(database: DatabaseResource, calendar: CourseCalendar, reason: str) -> dg.MaterializeResult:
    """A finished course that gives no training row is frozen all the same, with the reason,
    so the planner stops planning it (and `status` says why)."""
    with database.engine().begin() as connection:
        record_freeze(connection, calendar.course_id, calendar.end, NOTHING_TO_LEARN, 0, reason, utc_now())
    nothing = validation.CheckOutcome(True, f"nothing to freeze: {reason}")
    return dg.MaterializeResult(
        metadata={"rows_added": 0, "note": f"nothing to learn from: {reason}"},
        check_results=[check_result(name, nothing) for name in ("schema_and_labels", "every_week_covered", "label_balance")],
    )


FEATURE_ASSETS = [student_features, student_feature_history, training_data]
