"""Validated API records to table rows: one function per table, no I/O.

Timestamps become naive UTC (see storage.schema). Summary tables are derived here
from the per-content records, so a summary can never disagree with its detail rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from dropout_pipeline.source_api import records as r


def utc_naive(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def course_row(course: r.Course, discovered_at: datetime) -> dict:
    return {
        "course_id": course.course_id,
        "display_name": course.display_name,
        "org": course.org,
        "start": utc_naive(course.start),
        "end": utc_naive(course.end),
        "enrollment_count": course.enrollment_count,
        "discovered_at": discovered_at,
    }


def enrollment_rows(course_id: str, records: Sequence[r.Enrollment], fetched_at: datetime) -> list[dict]:
    return [
        {
            "user_id": e.user_id,
            "course_id": course_id,
            "enrollment_id": e.enrollment_id,
            "username": e.username,
            "email": e.email,
            "full_name": e.full_name,
            "mode": e.mode,
            "is_active": e.is_active,
            "created": utc_naive(e.created),
            "attributes": e.attributes,
            "fetched_at": fetched_at,
        }
        for e in records
    ]


def grade_rows(course_id: str, records: Sequence[r.Grade], fetched_at: datetime) -> list[dict]:
    rows = []
    for g in records:
        attempted = [s.percent for s in g.section_breakdown if s.attempted]
        rows.append(
            {
                "user_id": g.user_id,
                "course_id": course_id,
                "percent_grade": g.percent_grade,
                "letter_grade": g.letter_grade,
                "is_passed": g.is_passed,
                "sections_total": len(g.section_breakdown),
                "sections_attempted": len(attempted),
                "attempted_sections_avg_percent": 100 * sum(attempted) / len(attempted) if attempted else None,
                "section_breakdown": [s.model_dump() for s in g.section_breakdown],
                "fetched_at": fetched_at,
            }
        )
    return rows


def progress_rows(course_id: str, records: Sequence[r.Progress], fetched_at: datetime) -> list[dict]:
    return [
        {
            "user_id": p.user_id,
            "course_id": course_id,
            "total_blocks": p.total_blocks,
            "completed_blocks": p.completed_blocks,
            "progress_percent": p.progress_percent,
            "current_chapter": p.current_chapter,
            "current_section": p.current_section,
            "current_unit": p.current_unit,
            "completion_rate": p.completion_rate,
            "last_activity": utc_naive(p.last_activity),
            "fetched_at": fetched_at,
        }
        for p in records
    ]


def discussion_rows(course_id: str, records: Sequence[r.Discussion], fetched_at: datetime) -> list[dict]:
    fields = ("threads_count", "comments_count", "total_interactions", "questions_count", "total_upvotes")
    return [
        {"user_id": d.user_id, "course_id": course_id, **{f: getattr(d, f) for f in fields}, "fetched_at": fetched_at}
        for d in records
    ]


def h5p_score_rows(course_id: str, responses: Sequence[r.LearnerScores], fetched_at: datetime) -> list[dict]:
    return [
        {
            "user_id": response.user_id,
            "course_id": course_id,
            "content_id": s.content_id,
            "content_title": s.content_title,
            "content_type": s.content_type,
            "score": s.score,
            "max_score": s.max_score,
            "percentage": s.percentage,
            "attempts": s.attempts,
            "finished_at": utc_naive(s.finished_at),
            "fetched_at": fetched_at,
        }
        for response in responses
        for s in response.scores
    ]


def h5p_summary_rows(course_id: str, responses: Sequence[r.LearnerScores], fetched_at: datetime) -> list[dict]:
    rows = []
    for response in responses:
        scores = response.scores
        total, maximum = sum(s.score for s in scores), sum(s.max_score for s in scores)
        finished = [s.finished_at for s in scores if s.finished_at is not None]
        rows.append(
            {
                "user_id": response.user_id,
                "course_id": course_id,
                "total_contents": len(scores),
                "completed_contents": len(finished),
                "total_score": total,
                "total_max_score": maximum,
                "overall_percentage": 100 * total / maximum if maximum else 0.0,
                "avg_attempts": sum(s.attempts for s in scores) / len(scores) if scores else None,
                "last_finished_at": utc_naive(max(finished)) if finished else None,
                "fetched_at": fetched_at,
            }
        )
    return rows


def video_rows(course_id: str, responses: Sequence[r.LearnerVideos], fetched_at: datetime) -> list[dict]:
    return [
        {
            "user_id": response.user_id,
            "course_id": course_id,
            "content_id": v.content_id,
            "content_title": v.content_title,
            "progress_percent": v.progress_percent,
            "current_time": v.current_time,
            "duration": v.duration,
            "status": v.status,
            "last_watched_at": utc_naive(v.last_watched_at),
            "fetched_at": fetched_at,
        }
        for response in responses
        for v in response.videos
    ]


def video_summary_rows(course_id: str, responses: Sequence[r.LearnerVideos], fetched_at: datetime) -> list[dict]:
    rows = []
    for response in responses:
        videos = response.videos
        watched = [v.last_watched_at for v in videos if v.last_watched_at is not None]
        rows.append(
            {
                "user_id": response.user_id,
                "course_id": course_id,
                "total_videos": len(videos),
                "completed_videos": sum(v.status == "completed" for v in videos),
                "in_progress_videos": sum(v.status == "in_progress" for v in videos),
                "total_duration": sum(v.duration for v in videos),
                "total_watched_time": sum(v.current_time for v in videos),
                "last_watched_at": utc_naive(max(watched)) if watched else None,
                "fetched_at": fetched_at,
            }
        )
    return rows


def dashboard_rows(course_id: str, responses: Sequence[r.LearnerDashboard], fetched_at: datetime) -> list[dict]:
    fields = (
        "overall_completion",
        "total_items",
        "completed_items",
        "h5p_total_contents",
        "h5p_completed_contents",
        "video_total_videos",
        "video_completed_videos",
    )
    return [
        {"user_id": d.user_id, "course_id": course_id, **{f: getattr(d, f) for f in fields}, "fetched_at": fetched_at}
        for d in responses
    ]


MOOC_TABLE_ROWS = {
    "enrollments": ("enrollments", enrollment_rows),
    "mooc_grades": ("grades", grade_rows),
    "mooc_progress": ("progress", progress_rows),
    "mooc_discussions": ("discussions", discussion_rows),
}
"""table name -> (MOOC list endpoint kind, row builder)"""

H5P_TABLE_ROWS = {
    "h5p_scores": ("scores", h5p_score_rows),
    "h5p_scores_summary": ("scores", h5p_summary_rows),
    "video_progress": ("videos", video_rows),
    "video_progress_summary": ("videos", video_summary_rows),
    "dashboard_summary": ("dashboard", dashboard_rows),
}
"""table name -> (H5P per-learner endpoint kind, row builder)"""
