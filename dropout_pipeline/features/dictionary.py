"""The feature dictionary: every feature the model sees, what it means, and where it comes from.

This list is the single source of truth: the database columns of `student_features`,
its history and `training_data` are made from it, the feature builder must produce
exactly these columns (a test checks), and `docs/feature_dictionary.md` is generated
from it (`dropout-pipeline feature-dictionary`). Every feature is computed from data
known at the snapshot date only. Names, emails and usernames never enter a feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


# When a feature's inputs are taken: every rule ends at the end of the snapshot date.
STATE = "the platform's answer `as_of` the snapshot date"
CALENDAR = "the course calendar, the enrolment time and the snapshot date"
EVENTS = "events stamped before the end of the snapshot date"
COHORT = "the course's learners on the same snapshot date"


@dataclass(frozen=True)
class Feature:
    name: str
    meaning: str
    source: str
    unit: str
    dtype: Literal["float", "int", "category"]
    nullable: bool = False  # null means "undefined for this learner" (e.g. never active), not "missing"
    often_null: bool = False  # undefined for most learners by design (e.g. in the first week), so no null-rate limit
    as_of: str = STATE  # what the value may depend on (the no-leakage rule a test holds it to)
    course_level: bool = False  # the same for every learner of a course: a description of the course, not of the learner


FEATURES: tuple[Feature, ...] = (
    # Enrolment and course calendar
    Feature("enrollment_mode", "Enrolment track (audit, verified, ...)", "enrollments.mode", "category", "category"),
    Feature("is_active_enrollment", "1 if the enrolment is active", "enrollments.is_active", "0/1", "int"),
    Feature("days_since_enrollment", "Days from enrolment to the snapshot date", "enrollments.created", "days", "float", as_of=CALENDAR),
    Feature("enrolled_days_after_start", "Days between course start and enrolment", "enrollments.created, courses.start", "signed days (negative: before start)", "float", as_of=CALENDAR),
    Feature("course_week", "Week of the course at the snapshot date (1 = first week)", "courses.start", "week", "int", as_of=CALENDAR),
    Feature("course_day", "Day of the course at the snapshot date (1 = first day): where in its week a snapshot falls", "courses.start", "day", "int", as_of=CALENDAR),
    Feature("course_elapsed_fraction", "Fraction of the course calendar elapsed at the snapshot date (null: self-paced, no end)", "courses.start, courses.end", "0-1", "float", nullable=True, as_of=CALENDAR),
    Feature("course_duration_weeks", "Planned length of the course (null: self-paced, no end)", "courses.start, courses.end", "weeks", "float", nullable=True, as_of=CALENDAR),
    # Grades
    Feature("mooc_grade_percentage", "Course grade so far (unattempted work counts as 0)", "mooc_grades.percent_grade", "%", "float"),
    Feature("mooc_letter_grade", "Letter grade so far ('none' when the platform gives none)", "mooc_grades.letter_grade", "category", "category"),
    Feature("mooc_is_passed", "1 if the platform's verdict so far is a pass", "mooc_grades.is_passed", "0/1", "int"),
    Feature("graded_sections_total", "Graded sections listed in the grade breakdown", "mooc_grades.section_breakdown", "count", "int", course_level=True),
    Feature("graded_sections_attempted", "Graded sections attempted so far", "mooc_grades.section_breakdown", "count", "int"),
    Feature("graded_attempt_rate", "Share of graded sections attempted", "mooc_grades.section_breakdown", "0-1", "float"),
    Feature("attempted_sections_avg_percent", "Mean score on the sections attempted (null: none attempted)", "mooc_grades.section_breakdown", "%", "float", nullable=True),
    # Progress
    Feature("total_blocks", "Course blocks (units) in the course", "mooc_progress.total_blocks", "count", "int", course_level=True),
    Feature("completed_blocks", "Blocks completed so far", "mooc_progress.completed_blocks", "count", "int"),
    Feature("progress_percent", "Platform's progress indicator", "mooc_progress.progress_percent", "%", "float"),
    Feature("mooc_completion_rate", "Share of blocks completed", "mooc_progress.completion_rate", "0-1", "float"),
    Feature("has_any_activity", "1 if the learner has ever opened the course", "mooc_progress.last_activity", "0/1", "int"),
    Feature("days_since_last_activity", "Days from the last activity to the snapshot date (null: never active)", "mooc_progress.last_activity", "days", "float", nullable=True),
    Feature("days_inactive_share", "Days since last activity (or since enrolment, if never active) over days in the course (since enrolment, or since the start for those who enrolled before it)", "mooc_progress.last_activity, enrollments.created", "0-1", "float"),
    # Discussions
    Feature("discussion_threads_count", "Forum threads started", "mooc_discussions.threads_count", "count", "int"),
    Feature("discussion_comments_count", "Forum comments written", "mooc_discussions.comments_count", "count", "int"),
    Feature("discussion_total_interactions", "Threads, comments and replies in all", "mooc_discussions.total_interactions", "count", "int"),
    Feature("discussion_questions_count", "Questions asked in the forum", "mooc_discussions.questions_count", "count", "int"),
    Feature("discussion_total_upvotes", "Upvotes received", "mooc_discussions.total_upvotes", "count", "int"),
    # H5P interactive content
    Feature("h5p_total_contents", "H5P contents the learner has a record for", "h5p_scores_summary.total_contents", "count", "int"),
    Feature("h5p_completed_contents", "H5P contents finished", "h5p_scores_summary.completed_contents", "count", "int"),
    Feature("h5p_completion_rate", "Finished H5P contents over the course's H5P contents", "h5p_scores_summary, dashboard_summary.h5p_total_contents", "0-1", "float"),
    Feature("h5p_score_percentage", "Total H5P score over total H5P maximum, on contents attempted (null: none)", "h5p_scores_summary.overall_percentage", "%", "float", nullable=True),
    Feature("h5p_avg_attempts", "Mean attempts per attempted H5P content (null: none attempted)", "h5p_scores.attempts", "attempts", "float", nullable=True),
    Feature("h5p_days_since_last_finish", "Days since the learner last finished an H5P content (null: never)", "h5p_scores.finished_at", "days", "float", nullable=True),
    # Video
    Feature("video_total_videos", "Videos in the course", "dashboard_summary.video_total_videos", "count", "int", course_level=True),
    Feature("video_completed_videos", "Videos watched to the end", "video_progress_summary.completed_videos", "count", "int"),
    Feature("video_in_progress_videos", "Videos started but not finished", "video_progress_summary.in_progress_videos", "count", "int"),
    Feature("video_watch_time_minutes", "Time watched, summed over videos", "video_progress_summary.total_watched_time", "minutes", "float"),
    Feature("video_watch_ratio", "Time watched over the length of the videos the learner started (null: none started)", "video_progress_summary", "0-1", "float", nullable=True),
    Feature("video_days_since_last_watch", "Days since the learner last watched a video (null: never)", "video_progress.last_watched_at", "days", "float", nullable=True),
    # Dashboard
    Feature("dashboard_overall_completion", "H5P dashboard's overall completion", "dashboard_summary.overall_completion", "%", "float"),
    Feature("dashboard_completed_items", "Items completed on the H5P dashboard", "dashboard_summary.completed_items", "count", "int"),
    # Recent behaviour, from the timed events: H5P contents finished and videos watched (features.activity)
    Feature("events_last_7_days", "Events (H5P contents finished, videos watched: the last time of each) in the 7 days up to the snapshot", "h5p_scores.finished_at, video_progress.last_watched_at", "count", "int", as_of=EVENTS),
    Feature("events_last_14_days", "Events in the 14 days up to the snapshot", "h5p_scores.finished_at, video_progress.last_watched_at", "count", "int", as_of=EVENTS),
    Feature("activity_trend_7_days", "Events in the last 7 days minus events in the 7 days before (negative: slowing down)", "h5p_scores.finished_at, video_progress.last_watched_at", "signed count", "int", as_of=EVENTS),
    Feature("active_days", "Distinct days (the platform's local days) with an event, up to the snapshot", "h5p_scores.finished_at, video_progress.last_watched_at", "days", "int", as_of=EVENTS),
    Feature("weeks_active_share", "Share of the learner's weeks in the course (from enrolment, or the start if later) with an event: regularity", "h5p_scores.finished_at, video_progress.last_watched_at, enrollments.created", "0-1", "float", as_of=EVENTS),
    Feature("first_week_events", "Events in the learner's first 7 days in the course (up to the snapshot)", "h5p_scores.finished_at, video_progress.last_watched_at, enrollments.created", "count", "int", as_of=EVENTS),
    Feature("h5p_score_trend", "Mean H5P score on contents finished in the last 7 days minus on those finished before (null: none in one of the two)", "h5p_scores.finished_at, h5p_scores.percentage", "percentage points", "float", nullable=True, often_null=True, as_of=EVENTS),
    Feature("sections_attempted_vs_due", "Graded sections attempted over those due by the snapshot, due dates taken as spread evenly over the course weeks, the API giving none (null: none due yet, or no end); timeliness", "mooc_grades.section_breakdown, courses.start, courses.end", "0-2", "float", nullable=True, often_null=True),
    Feature("course_has_h5p", "1 if the course has H5P content at all (0: every H5P feature is empty by design, not by inactivity)", "dashboard_summary.h5p_total_contents (course)", "0/1", "int", course_level=True),
    Feature("course_has_videos", "1 if the course has videos at all", "dashboard_summary.video_total_videos (course)", "0/1", "int", course_level=True),
    # Relative to the cohort on the same date
    Feature("grade_percentile_in_course", "Percentile rank of the grade among the course's learners on the same date", "mooc_grades (cohort)", "0-100", "float", as_of=COHORT),
    Feature("completion_percentile_in_course", "Percentile rank of the completion rate among the course's learners on the same date", "mooc_progress (cohort)", "0-100", "float", as_of=COHORT),
    Feature("grade_minus_course_mean", "Grade minus the course's mean grade on the same date", "mooc_grades (cohort)", "percentage points", "float", as_of=COHORT),
    Feature("recent_activity_percentile_in_course", "Percentile rank of events in the last 7 days among the course's learners on the same date", "h5p_scores, video_progress (cohort)", "0-100", "float", as_of=COHORT),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.dtype == "category")


def feature_dictionary_markdown() -> str:
    """The dictionary as the Markdown table kept in docs/feature_dictionary.md."""
    lines = [
        "# Feature dictionary",
        "",
        "Generated from `dropout_pipeline/features/dictionary.py` by",
        "`dropout-pipeline feature-dictionary`; a test fails when the two differ.",
        "Every feature is computed as of the snapshot date: nothing later is used. The `as of`",
        "column says from what: a replay of a past date gives the same value whatever happened",
        "since (a test replays one date at two later clocks and compares every feature).",
        "",
        "## One moment per row",
        "",
        "A row describes the end of its snapshot date (a local day of the platform), in serving",
        "as in training. The training rows are replayed once a course is over, `as_of` days 1, 4",
        "and 7 of each week, and hold those whole days. So a refresh on day D (from 06:00) scores",
        "the end of D-1, the last day that has ended: it asks the APIs `as_of` D-1 and labels its",
        "rows (and its predictions) `snapshot_date` D-1, never the first hours of D under the date",
        "D (`features/calendar.py: scored_day`). A course is first refreshed the day after its",
        "start, once its first day has ended. Runs are still tagged with the day they run on (D),",
        "and the web app's \"today\" is that day; the week a prediction belongs to is its",
        "snapshot date's. Tolerance: on a platform that honours `as_of`, the row built at 06:00 of",
        "D equals the training row replayed for D-1 exactly, up to float rounding (1e-9; a test",
        "builds one through the refresh at 06:00 and compares every feature, on SQLite and",
        "PostgreSQL). A platform that ignores `as_of` answers its present, 06:00 of D: events",
        "stamped after the end of D-1 are left out of the event counts, a time after it counts as",
        "0 days ago, and the totals (grades, progress, forum, dashboard) include the night's work.",
        "",
        "## Features",
        "",
        "The models also see, for every numeric feature that describes the learner (as of the",
        "platform's answer or the events, not a description of the course), its percentile rank",
        "among the course's learners on the same date (as of the cohort; `modeling/cohort.py`).",
        "A reason drawn from a rank names the feature it ranks.",
        "",
        "| feature | meaning | source | unit | type | as of |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| `{f.name}` | {f.meaning} | {f.source} | {f.unit} | {f.dtype}{', nullable' if f.nullable else ''} | {f.as_of} |" for f in FEATURES]
    return "\n".join(lines) + "\n"
