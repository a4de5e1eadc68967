"""The response shapes of docs/source-api.md, validated with pydantic.

Extra fields are allowed (a real platform may send more); missing or mistyped required
fields make the whole response a BadResponseError before anything is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Course(_Record):
    course_id: str = Field(min_length=1)
    display_name: str
    org: str
    start: datetime
    end: datetime | None = None
    enrollment_count: int | None = None


class Enrollment(_Record):
    enrollment_id: int
    user_id: int
    username: str | None = None
    email: str | None = None
    full_name: str | None = None
    mode: str | None = None
    is_active: bool
    created: datetime
    attributes: dict | None = None


class Section(_Record):
    label: str
    category: str | None = None
    percent: float = Field(ge=0, le=1)
    attempted: bool | None = None


class Grade(_Record):
    user_id: int
    percent_grade: float = Field(ge=0, le=1)
    letter_grade: str | None = None
    is_passed: bool
    section_breakdown: list[Section] = []


class Progress(_Record):
    user_id: int
    total_blocks: int = Field(ge=0)
    completed_blocks: int = Field(ge=0)
    progress_percent: float = Field(ge=0, le=100)
    current_chapter: str | None = None
    current_section: str | None = None
    current_unit: str | None = None
    completion_rate: float = Field(ge=0, le=1)
    last_activity: datetime | None = None


class Discussion(_Record):
    user_id: int
    threads_count: int = Field(ge=0)
    comments_count: int = Field(ge=0)
    total_interactions: int = Field(ge=0)
    questions_count: int = Field(ge=0)
    total_upvotes: int = Field(ge=0)


class Page(_Record):
    count: int = Field(ge=0)
    next: str | None = None
    previous: str | None = None
    results: list[dict]


class Score(_Record):
    content_id: int
    content_title: str | None = None
    content_type: str | None = None
    score: float = Field(ge=0)
    max_score: float = Field(ge=0)
    percentage: float = Field(ge=0)
    attempts: int = Field(ge=0)
    finished_at: datetime | None = None


class LearnerScores(_Record):
    user_id: int
    course_id: str
    scores: list[Score]


class Video(_Record):
    content_id: int
    content_title: str | None = None
    progress_percent: float = Field(ge=0, le=100)
    current_time: int = Field(ge=0)
    duration: int = Field(ge=0)
    status: Literal["not_started", "in_progress", "completed"]
    last_watched_at: datetime | None = None


class LearnerVideos(_Record):
    user_id: int
    course_id: str
    videos: list[Video]


class LearnerDashboard(_Record):
    user_id: int
    course_id: str
    overall_completion: float = Field(ge=0, le=100)
    total_items: int = Field(ge=0)
    completed_items: int = Field(ge=0)
    h5p_total_contents: int = Field(ge=0)
    h5p_completed_contents: int = Field(ge=0)
    video_total_videos: int = Field(ge=0)
    video_completed_videos: int = Field(ge=0)


MOOC_LIST_ENDPOINTS: dict[str, tuple[str, type[_Record]]] = {
    "enrollments": ("/course-enrollments-attributes/{course_id}/", Enrollment),
    "grades": ("/export/student-grades/{course_id}/", Grade),
    "progress": ("/export/student-progress/{course_id}/", Progress),
    "discussions": ("/export/student-discussions/{course_id}/", Discussion),
}

H5P_ENDPOINTS: dict[str, tuple[str, type[_Record]]] = {
    "scores": ("/scores/{user_id}/{course_id}", LearnerScores),
    "videos": ("/video-progress/{user_id}/{course_id}", LearnerVideos),
    "dashboard": ("/dashboard/{user_id}/{course_id}", LearnerDashboard),
}
