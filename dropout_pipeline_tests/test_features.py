"""Features: exact values, no leakage, idempotent history, and checks that bite."""

from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.features import validation
from dropout_pipeline.features.build import build_features
from dropout_pipeline.features.dictionary import FEATURE_NAMES, feature_dictionary_markdown
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.features.labels import training_weeks, weeks_with_learners
from dropout_pipeline.features.replay import AsOfGuard
from dropout_pipeline.ingestion.pull import pull_course
from dropout_pipeline.simulator.runner import simulator_thread
from dropout_pipeline.lifecycle.failures import root_cause
from dropout_pipeline.simulator.server import Faults, SimulatorState
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.raw_tables import tables_as_frames
from dropout_pipeline_tests.conftest import SMALL_WORLD, api_resource, course_ids, resources_for

COURSE = "course-v1:T+HAND+2026_S2"
T = datetime.fromisoformat


def hand_made_tables() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Two learners: A active in week 4, B enrolled but never active (no rows but enrolment)."""
    key = {"course_id": COURSE}
    frame = lambda rows: pd.DataFrame(rows)  # noqa: E731
    tables = {
        "enrollments": frame([
            {**key, "user_id": 1, "mode": "verified", "is_active": True, "created": T("2026-09-01 03:00")},
            {**key, "user_id": 2, "mode": "audit", "is_active": True, "created": T("2026-09-10 00:00")},
        ]),
        "mooc_grades": frame([{**key, "user_id": 1, "percent_grade": 0.42, "letter_grade": None, "is_passed": False,
                               "sections_total": 15, "sections_attempted": 4, "attempted_sections_avg_percent": 70.0}]),
        "mooc_progress": frame([{**key, "user_id": 1, "total_blocks": 150, "completed_blocks": 45, "progress_percent": 30.0,
                                 "completion_rate": 0.3, "last_activity": T("2026-10-02 00:00")}]),
        "mooc_discussions": frame([{**key, "user_id": 1, "threads_count": 2, "comments_count": 3, "total_interactions": 5,
                                    "questions_count": 1, "total_upvotes": 4}]),
        "h5p_scores_summary": frame([{**key, "user_id": 1, "total_contents": 5, "completed_contents": 5, "overall_percentage": 80.0,
                                      "avg_attempts": 1.4, "last_finished_at": T("2026-10-01 12:00")}]),
        "video_progress_summary": frame([{**key, "user_id": 1, "completed_videos": 3, "in_progress_videos": 1, "total_duration": 2400,
                                          "total_watched_time": 2100, "last_watched_at": T("2026-10-03 00:00")}]),
        "dashboard_summary": frame([{**key, "user_id": 1, "overall_completion": 40.0, "completed_items": 8, "h5p_total_contents": 30,
                                     "video_total_videos": 30}]),
        # A's timed events: three H5P finishes and three videos watched (the summaries above need not agree).
        "h5p_scores": frame([{**key, "user_id": 1, "finished_at": T(at), "percentage": p}
                             for at, p in (("2026-10-01 12:00", 90.0), ("2026-09-25 12:00", 70.0), ("2026-09-08 09:00", 60.0))]),
        "video_progress": frame([{**key, "user_id": 1, "last_watched_at": T(at)} for at in ("2026-10-03 00:00", "2026-09-26 10:00", "2026-10-04 20:00")]),
    }
    # Starts 2026-09-07 00:00 and ends 2026-12-20 23:59:59 at UTC+7, stored as naive UTC.
    courses = frame([{"course_id": COURSE, "start": T("2026-09-06 17:00"), "end": T("2026-12-20 16:59:59")}])
    return tables, courses


EXPECTED_ACTIVE = {
    "enrollment_mode": "verified", "is_active_enrollment": 1, "days_since_enrollment": 33.875, "enrolled_days_after_start": -5.583333,
    "course_week": 4, "course_elapsed_fraction": 28 / 105, "course_duration_weeks": 15.0,
    "mooc_grade_percentage": 42.0, "mooc_letter_grade": "none", "mooc_is_passed": 0,
    "graded_sections_total": 15, "graded_sections_attempted": 4, "graded_attempt_rate": 4 / 15, "attempted_sections_avg_percent": 70.0,
    "total_blocks": 150, "completed_blocks": 45, "progress_percent": 30.0, "mooc_completion_rate": 0.3,
    "has_any_activity": 1, "days_since_last_activity": 3.0, "days_inactive_share": 3 / 28.291667,
    "discussion_threads_count": 2, "discussion_comments_count": 3, "discussion_total_interactions": 5,
    "discussion_questions_count": 1, "discussion_total_upvotes": 4,
    "h5p_total_contents": 5, "h5p_completed_contents": 5, "h5p_completion_rate": 5 / 30, "h5p_score_percentage": 80.0,
    "h5p_avg_attempts": 1.4, "h5p_days_since_last_finish": 3.5,
    "video_total_videos": 30, "video_completed_videos": 3, "video_in_progress_videos": 1, "video_watch_time_minutes": 35.0,
    "video_watch_ratio": 0.875, "video_days_since_last_watch": 2.0,
    "dashboard_overall_completion": 40.0, "dashboard_completed_items": 8,
    "grade_percentile_in_course": 100.0, "completion_percentile_in_course": 100.0, "grade_minus_course_mean": 21.0,
    # As of the end of 10-04: 10-01, 10-03 and 10-04 fall in the last 7 days, 09-25 and 09-26 in the 7 before.
    "course_day": 28, "events_last_7_days": 3, "events_last_14_days": 5, "activity_trend_7_days": 1, "active_days": 6,
    "weeks_active_share": 4 / 5,  # weeks 1, 3, 4 and 5 of five begun since the start (09-07 local), week 2 empty
    "first_week_events": 1, "h5p_score_trend": 90.0 - 65.0, "sections_attempted_vs_due": 4 / 4,  # 4 of 15 weeks done
    "course_has_h5p": 1, "course_has_videos": 1, "recent_activity_percentile_in_course": 100.0,
}


def test_features_of_a_hand_made_course_are_exactly_right():
    tables, courses = hand_made_tables()
    features = build_features(tables, courses, date(2026, 10, 4)).set_index("user_id")
    assert list(features.columns) == ["course_id", *FEATURE_NAMES, "snapshot_date"]
    for name, expected in EXPECTED_ACTIVE.items():
        assert features.loc[1, name] == pytest.approx(expected, abs=1e-5) if not isinstance(expected, str) else features.loc[1, name] == expected, name
    quiet = features.loc[2]
    assert quiet["has_any_activity"] == 0 and pd.isna(quiet["days_since_last_activity"]) and quiet["days_inactive_share"] == 1.0
    assert quiet["days_since_enrollment"] == 25.0 and quiet["enrolled_days_after_start"] == pytest.approx(3.291667, abs=1e-5)
    assert quiet["mooc_grade_percentage"] == 0 and quiet["h5p_completed_contents"] == 0 and pd.isna(quiet["h5p_score_percentage"])
    assert quiet["grade_percentile_in_course"] == 50.0 and quiet["grade_minus_course_mean"] == -21.0
    assert quiet["events_last_14_days"] == 0 and quiet["weeks_active_share"] == 0 and pd.isna(quiet["h5p_score_trend"])
    assert quiet["recent_activity_percentile_in_course"] == 50.0 and quiet["course_has_h5p"] == 1


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_a_past_snapshot_does_not_change_when_later_activity_is_added(profile):
    """The same course replayed as of 2026-10-04, once when the platform's clock was at
    2026-10-15 and once at 2026-11-22 (six more weeks of activity): identical features,
    every one of them (the recent-activity ones included), on both simulator profiles."""
    snapshot = date(2026, 10, 4)
    frames = []
    for clock in (date(2026, 10, 15), date(2026, 11, 22)):
        world = SMALL_WORLD.__class__(**{**SMALL_WORLD.__dict__, "today": clock, "profile": profile})
        with simulator_thread(SimulatorState(world=world)) as sim:
            course = next(c for c in sim.state.listed_courses() if c.start <= snapshot <= c.end)
            settings = api_resource(sim).client_settings()
            pulled = pull_course(settings, course.course_id, as_of=snapshot)
            frames.append(build_features(tables_as_frames(pulled.tables), pd.DataFrame([{
                "course_id": course.course_id, "start": T(f"{course.start - pd.Timedelta(days=1)} 17:00"), "end": T(f"{course.end} 16:59:59"),
            }]), snapshot))
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert list(frames[0].columns) == ["user_id", "course_id", *FEATURE_NAMES, "snapshot_date"]
    assert frames[0]["completed_blocks"].sum() > 0 and frames[0]["events_last_14_days"].sum() > 0 and frames[0]["active_days"].sum() > 0


def test_rebuilding_history_and_training_data_is_idempotent(simulator, instance, sqlite_url, tmp_path):
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    course_id = course_ids(simulator)[0][0]
    instance.add_dynamic_partitions("courses", [course_id])
    counts = []
    for _ in range(2):
        result = defs.resolve_job_def("course_history").execute_in_process(instance=instance, partition_key=course_id)
        assert result.success
        with engine_for(sqlite_url).connect() as connection:
            counts.append(tuple(connection.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                                for t in (schema.student_features_history, schema.training_data)))
        frozen = [e.materialization.metadata for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "training_data"]
        added = [m["rows_added"].value for m in frozen]
        assert 0 < frozen[0]["label_balance"].value["is_passed"] < 1
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks == {"schema_and_labels": True, "every_week_covered": True, "label_balance": True}
    assert counts[0] == counts[1] and counts[0][1] > 0
    assert added == [0]  # the second build froze nothing new
    with engine_for(sqlite_url).connect() as connection:
        training_dates = set(connection.execute(sa.select(schema.training_data.c.snapshot_date).distinct()).scalars())
        history_dates = set(connection.execute(sa.select(schema.student_features_history.c.snapshot_date).distinct()).scalars())
    end_date, graded_on = sorted(history_dates)[-2:]
    assert graded_on - end_date == timedelta(days=6)  # the last day of the default grace period (7 days) after the end
    assert training_dates == history_dates - {end_date, graded_on}  # the snapshots that give labels are never training rows
    start = min(history_dates)
    assert {(day - start).days % 7 + 1 for day in training_dates} == {1, 4, 7}  # early, mid and end of every week


def test_student_features_checks_pass_on_real_data(simulator, instance, sqlite_url, tmp_path):
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    course_id = course_ids(simulator)[1][0]
    instance.add_dynamic_partitions("courses", [course_id])
    selection = ["enrollments", "mooc_grades", "mooc_progress", "mooc_discussions", "h5p_scores", "h5p_scores_summary",
                 "video_progress", "video_progress_summary", "dashboard_summary", "student_features"]
    job = defs.resolve_job_def("course_refresh")
    result = job.execute_in_process(instance=instance, partition_key=course_id, asset_selection=[dg.AssetKey(s) for s in selection])
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"schema_and_ranges": True, "every_enrolled_learner_present": True, "null_rates": True, "built_from_fresh_data": True}


@pytest.fixture
def good_features():
    tables, courses = hand_made_tables()
    return build_features(tables, courses, date(2026, 10, 4))


def test_schema_check_fails_on_out_of_range_values(good_features):
    bad = good_features.copy()
    bad.loc[0, "mooc_grade_percentage"] = 130.0
    bad.loc[1, "h5p_completion_rate"] = -0.5
    outcome = validation.validate_features(bad)
    assert not outcome.passed
    assert {f["column"] for f in outcome.metadata["failures"]} == {"mooc_grade_percentage", "h5p_completion_rate"}


def test_schema_check_fails_on_duplicate_learners(good_features):
    assert not validation.validate_features(pd.concat([good_features, good_features.head(1)])).passed


def test_completeness_check_fails_when_an_enrolled_learner_is_missing(good_features):
    outcome = validation.every_learner_present(good_features.head(1), [1, 2, 3])
    assert not outcome.passed and outcome.metadata["missing_sample"] == [2, 3]


def test_null_rate_check_fails_on_nulls_where_none_are_allowed(good_features):
    bad = good_features.copy()
    bad["mooc_grade_percentage"] = float("nan")
    assert "mooc_grade_percentage" in validation.null_rates_acceptable(bad).metadata["too_high"]
    assert validation.null_rates_acceptable(good_features).passed


def labelled(features: pd.DataFrame) -> pd.DataFrame:
    return features.assign(is_passed=[True, False], is_dropout=[False, True], final_grade=[70.0, 5.0], snapshot_week=4, semester="2026_S2")


def test_training_schema_check_fails_on_a_missing_label(good_features):
    assert validation.validate_training_rows(labelled(good_features)).passed
    bad = labelled(good_features).astype({"is_passed": object})
    bad.loc[0, "is_passed"] = None
    assert not validation.validate_training_rows(bad).passed


def test_label_balance_check_fails_when_a_label_has_one_class(good_features):
    assert validation.label_balance(labelled(good_features)).passed
    outcome = validation.label_balance(labelled(good_features).assign(is_dropout=False))
    assert not outcome.passed and outcome.metadata["positive_share"]["is_dropout"] == 0.0


def test_feature_dictionary_document_matches_the_code():
    path = Path(__file__).parents[1] / "docs" / "feature_dictionary.md"
    assert path.read_text() == feature_dictionary_markdown(), "run `dropout-pipeline feature-dictionary`"
    assert len(FEATURE_NAMES) >= 36


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/mooc/export/student-grades/", "MOOC API GET /export/student-grades/"),
        ("/mooc/export/student-progress/", "MOOC API GET /export/student-progress/"),
        ("/mooc/export/student-discussions/", "MOOC API GET /export/student-discussions/"),
        ("/h5p/scores/", "H5P API GET /scores/"),
        ("/h5p/video-progress/", "H5P API GET /video-progress/"),
        ("/h5p/dashboard/", "H5P API GET /dashboard/"),
    ],
)
def test_a_platform_ignoring_as_of_on_one_endpoint_is_refused_before_anything_is_written(simulator, instance, sqlite_url, tmp_path, path, endpoint):
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    course_id = course_ids(simulator)[0][0]
    instance.add_dynamic_partitions("courses", [course_id])
    simulator.state.set_faults(Faults(ignore_as_of_prefix=path))
    result = defs.resolve_job_def("course_history").execute_in_process(instance=instance, partition_key=course_id, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure.step_key == "student_feature_history"
    message = root_cause(failure.step_failure_data.error)
    assert message.startswith(f"the platform ignores `as_of` on {endpoint}:") and f"no history of {course_id} was written" in message
    with engine_for(sqlite_url).connect() as connection:
        for table in (schema.student_features_history, schema.training_data):
            assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


def _answers(day: date, enrolled: list[int], blocks: int, posts: dict[int, int], grades: dict[int, float]) -> dict[str, list[dict]]:
    """What a platform answers as of `day`: enrolled learners, their blocks, posts and grades."""
    at = datetime.combine(day, datetime.min.time())
    return {
        "enrollments": [{"user_id": u, "created": at} for u in enrolled],
        "mooc_progress": [{"user_id": u, "completed_blocks": blocks, "last_activity": at if blocks else None} for u in enrolled],
        "h5p_scores": [], "video_progress": [],
        "mooc_grades": [{"user_id": u, "percent_grade": g, "sections_attempted": int(g > 0)} for u, g in grades.items()],
        "mooc_discussions": [{"user_id": u, "total_interactions": n, "total_upvotes": 0} for u, n in posts.items()],
        "dashboard_summary": [{"user_id": u, "completed_items": 0, "overall_completion": 0.0} for u in enrolled],
    }


START = date(2026, 9, 7)
BEFORE, WEEK_1, END = date(2026, 9, 6), date(2026, 9, 13), date(2026, 12, 20)


def test_an_honest_forum_whose_posts_all_came_in_week_one_is_not_refused_when_nobody_enrolled_before_the_start():
    guard = AsOfGuard(START)
    guard.observe(BEFORE, _answers(BEFORE, [], 0, {}, {}))
    guard.observe(WEEK_1, _answers(WEEK_1, [1, 2], 3, {1: 2, 2: 1}, {1: 0.1, 2: 0.0}))
    guard.observe(END, _answers(END, [1, 2], 40, {1: 2, 2: 1}, {1: 0.8, 2: 0.5}))
    assert guard.problems() == {}


def test_grades_that_ignore_as_of_are_refused_even_when_nobody_enrolled_before_the_start():
    end_grades, end_posts = {1: 0.8, 2: 0.5}, {1: 2, 2: 1}
    guard = AsOfGuard(START)
    guard.observe(BEFORE, _answers(BEFORE, [], 0, {}, end_grades))  # today's grades, whatever the date asked
    guard.observe(WEEK_1, _answers(WEEK_1, [1, 2], 3, end_posts, end_grades))
    guard.observe(END, _answers(END, [1, 2], 40, end_posts, end_grades))
    assert list(guard.problems()) == ["MOOC API GET /export/student-grades/"]
    assert "before the course started, it answered work by 2 learners not enrolled then" in guard.problems()["MOOC API GET /export/student-grades/"]


def test_weeks_before_anyone_enrolled_need_no_training_rows_but_every_later_week_does():
    calendar = CourseCalendar(COURSE, T("2026-09-06 17:00"), T("2026-10-04 16:59:59"))  # four weeks, 09-07 to 10-04 at UTC+7
    first_enrolment = T("2026-09-16 10:00")  # in week 2 (local 09-16 17:00): nobody was there at the end of week 1
    assert weeks_with_learners(calendar, first_enrolment) == [2, 3, 4]  # week 4: its days 1 and 4, before the end
    assert calendar.snapshot_dates(until=calendar.end_date)[-2:] == [date(2026, 9, 28), date(2026, 10, 1)]  # the end date gives labels
    rows = lambda weeks: pd.DataFrame({"snapshot_week": weeks})  # noqa: E731
    assert validation.every_week_covered(rows([2, 3, 4]), training_weeks(calendar), weeks_with_learners(calendar, first_enrolment)).passed
    assert validation.every_week_covered(rows([1, 2, 3, 4]), training_weeks(calendar), weeks_with_learners(calendar, first_enrolment)).passed
    gap = validation.every_week_covered(rows([3, 4]), training_weeks(calendar), weeks_with_learners(calendar, first_enrolment))
    assert not gap.passed and gap.metadata["missing_weeks"] == [2]
    beyond = validation.every_week_covered(rows([2, 3, 4, 5]), training_weeks(calendar), weeks_with_learners(calendar, first_enrolment))
    assert not beyond.passed and beyond.metadata["unexpected_weeks"] == [5]


@pytest.mark.parametrize("database", ["sqlite_url", "postgres_url"])
def test_a_row_built_at_six_in_the_morning_describes_the_same_moment_as_the_replayed_training_row(simulator, instance, tmp_path, request, database):
    """The daemon refreshes from 06:00 (the platform's clock and the product's both there); the
    row it scores must mean what the training row replayed for its snapshot date means, once
    the course is over and frozen. Tolerance: none beyond float rounding (1e-9), on a platform
    that honours `as_of` (feature dictionary: one moment per row)."""
    from dropout_pipeline.defs.resources import ClockResource
    from dropout_pipeline.features.replay import replay_course
    from dropout_pipeline.storage.feature_tables import read_current_features
    from dropout_pipeline.storage.raw_tables import read_course
    from dropout_pipeline_tests.conftest import TODAY

    database_url = request.getfixturevalue(database)
    course_id = course_ids(simulator)[1][0]
    instance.add_dynamic_partitions("courses", [course_id])
    simulator.control("clock", {"today": f"{TODAY}T06:00"})
    defs = build_definitions({**resources_for(simulator, database_url, tmp_path / "models"), "clock": ClockResource(today=f"{TODAY}T06:00")})
    selection = ["enrollments", "mooc_grades", "mooc_progress", "mooc_discussions", "h5p_scores", "h5p_scores_summary",
                 "video_progress", "video_progress_summary", "dashboard_summary", "student_features"]
    refresh = defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id, asset_selection=[dg.AssetKey(s) for s in selection])
    assert refresh.success
    with engine_for(database_url).connect() as connection:
        serving = read_current_features(connection, course_id)
        course = read_course(connection, course_id)
    (day,) = set(pd.to_datetime(serving["snapshot_date"]).dt.date)

    # The course ends; the freeze replays the snapshot date the refresh scored, from a platform that has seen everything since.
    simulator.control("clock", {"today": "2026-12-21T00:30"})
    replay = replay_course(api_resource(simulator).client_settings(), course, CourseCalendar(course_id, course["start"], course["end"]), [day], lambda _: None)
    training = replay.snapshots[0][1]
    serving, training = (frame.set_index("user_id").sort_index() for frame in (serving, training))
    assert list(serving.index) == list(training.index) and len(serving) > 0
    differ = {}
    for name in FEATURE_NAMES:
        left, right = serving[name], training[name]
        if left.dtype == object:
            same = (left == right).all()
        else:
            same = np.allclose(left.astype(float), right.astype(float), rtol=0, atol=1e-9, equal_nan=True)
        if not same:
            differ[name] = int((left != right).sum())
    assert differ == {}, f"features that differ between the 06:00 row and the replayed one (learners): {differ}"
    assert day == TODAY - timedelta(days=1)  # the rule: the last whole day, up to the night before


def test_stamps_a_platform_ignoring_as_of_gives_after_the_snapshot_count_as_at_its_end_not_as_negative_days():
    """A refresh scores the end of yesterday; a platform that ignores `as_of` also answers what
    happened this morning. Those times count as at the end of the snapshot date (0 days ago),
    and the row still passes its checks, instead of failing every refresh on negative days."""
    tables, courses = hand_made_tables()
    features = build_features(tables, courses, date(2026, 10, 1)).set_index("user_id")  # A watched a video on 10-03 00:00
    assert features.loc[1, "video_days_since_last_watch"] == 0.0 and features.loc[1, "days_since_last_activity"] == 0.0
    assert validation.validate_features(features.reset_index()).passed


def test_a_course_is_frozen_from_a_platform_that_lists_no_course_before_its_start(simulator, instance, sqlite_url, tmp_path):
    """The replay's witness, the day before the start, is answered 404 by such a platform (the
    contract's answer for a course it does not know yet): an answer as of that day all the same."""
    defs = build_definitions(resources_for(simulator, sqlite_url, tmp_path / "models"))
    course_id = course_ids(simulator)[0][0]
    instance.add_dynamic_partitions("courses", [course_id])
    simulator.state.set_faults(Faults(unlisted_before_start=True))
    result = defs.resolve_job_def("course_history").execute_in_process(instance=instance, partition_key=course_id, raise_on_error=False)
    failures = [root_cause(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"schema_and_labels": True, "every_week_covered": True, "label_balance": True}


def test_labels_take_verdicts_and_grades_graded_late_within_the_grace_period():
    """The freeze ran at the first tick after midnight, so a grade given after the end never
    reached the labels; the verdict and grade now come from the grace period's last day,
    inactivity still from the end."""
    from datetime import datetime as moment

    from dropout_pipeline.features.calendar import CourseCalendar
    from dropout_pipeline.features.dictionary import FEATURE_NAMES
    from dropout_pipeline.features.labels import grades_read_on, snapshot_plan, training_rows

    calendar = CourseCalendar("course-v1:T+LATE+2026_S2", moment(2026, 9, 6, 17), moment(2026, 9, 20, 16, 59, 59))  # two weeks, ends 09-20
    assert grades_read_on(calendar, date(2026, 9, 27), 7) == date(2026, 9, 26)  # the freeze's day: the last day of the grace period
    assert grades_read_on(calendar, date(2026, 9, 22), 7) == date(2026, 9, 21)  # frozen by hand sooner: the last day that has ended
    assert grades_read_on(calendar, date(2026, 9, 27), 0) == date(2026, 9, 20)
    assert snapshot_plan(calendar, date(2026, 9, 27), 7)[-2:] == [date(2026, 9, 20), date(2026, 9, 26)]
    assert snapshot_plan(calendar, date(2026, 9, 27), 0)[-1] == date(2026, 9, 20)

    def snapshot(day: date, passed: bool, grade: float, days_since: float) -> dict:
        row = {name: 0.0 for name in FEATURE_NAMES}
        row.update(user_id=1, course_id=calendar.course_id, snapshot_date=day, snapshot_week=calendar.week_of(day),
                   mooc_is_passed=passed, mooc_grade_percentage=grade, days_since_last_activity=days_since)
        return row

    history = pd.DataFrame([
        snapshot(date(2026, 9, 7), False, 0.0, 0.0),
        snapshot(date(2026, 9, 20), False, 45.0, 40.0),  # at the end: not passed, inactive
        snapshot(date(2026, 9, 26), True, 62.0, 0.0),  # the late grade lands, and the learner came back to see it
    ])
    late = training_rows(history, calendar, 30, moment(2026, 9, 27), date(2026, 9, 26))
    at_end = training_rows(history, calendar, 30, moment(2026, 9, 27))
    assert (late["is_passed"].tolist(), late["final_grade"].tolist(), late["is_dropout"].tolist()) == ([True], [62.0], [True])
    assert (at_end["is_passed"].tolist(), at_end["final_grade"].tolist()) == ([False], [45.0])
    assert late["snapshot_date"].tolist() == [date(2026, 9, 7)]  # features only from before the end
