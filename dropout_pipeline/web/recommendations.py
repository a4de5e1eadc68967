"""What to do next, for a learner of a course: the API's two recommenders (analytics.next_steps
within the course, analytics.course_recommender across courses), their bodies, and what the
learner page shows of them.

Both live under the learner, `/courses/{course_id}/students/{user_id}/...`, so the scope
rules are the learner's: 404 for an unknown course or a learner not enrolled in it, 403
for a course outside a teacher's token. Courses recommended are only those the token may
see: a teacher recommends what they can look at.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from dropout_pipeline.analytics import course_recommender, next_steps
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.lifecycle.plan import state_of
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.web_tables import Principal
from dropout_pipeline.web.api import ERRORS, CourseId, Token, UserId, checked, visible_course
from dropout_pipeline.web.auth import ApiError, reading
from dropout_pipeline.web.expiring_cache import ExpiringCache
from dropout_pipeline.web.schemas import datetime

router = APIRouter(prefix="/api/v1")

RECOMMENDER_SECONDS = 300.0
"""How long a process reuses the course recommender it fitted (reading every enrolment and
fitting took 0.5 s on the demo's 3,300 enrolments). It learns from enrolments, which change
once a day with a course's refresh; a recommendation five minutes behind loses nothing."""

ItemLimit = Annotated[int, Query(ge=1, le=50, description="at most this many items")]
CourseLimit = Annotated[int, Query(ge=1, le=50, description="at most this many courses")]


class Reference(BaseModel):
    source: Literal["earlier_runs", "current_classmates"] = Field(
        description="earlier_runs: learners of the same course's earlier runs, by outcome; current_classmates: this run's top third by grade now, against the rest")
    course_ids: list[str]
    week: int = Field(description="the course week compared: the learner's now, and the earlier runs' at its end")
    passed: int = Field(description="learners who passed (or, for current classmates, in the top third by grade)")
    others: int
    description: str


class NextItem(BaseModel):
    kind: Literal["unit", "h5p", "video"]
    title: str
    position: int = Field(description="its place among the course's items of its kind, in course order")
    content_id: int | None = Field(description="the H5P content or video; null for a unit")
    share_of_passed: float = Field(description="share of those who passed who had done it by this week")
    share_of_others: float
    lift: float = Field(description="share_of_passed minus share_of_others: what it is ranked by")


class NextSteps(BaseModel):
    course_id: str
    user_id: int
    week: int | None = Field(description="the course week today; null before the course starts")
    reference: Reference | None
    items: list[NextItem]
    note: str | None = Field(description="why there is nothing to suggest, when there is not")


class ScoreParts(BaseModel):
    collaborative: float
    content: float
    rules: float
    popularity: float


class RecommendedCourse(BaseModel):
    course_id: str
    display_name: str
    org: str
    start: datetime
    end: datetime | None
    state: Literal["upcoming", "running"]
    score: float = Field(description="the hybrid score: the parts (each 0-1 over the candidates) weighted by `weights`")
    parts: ScoreParts


class CourseRecommendations(BaseModel):
    course_id: str
    user_id: int
    courses_taken: int = Field(description="subjects (ORG+CODE) the learner has enrolled in: never recommended again")
    weights: ScoreParts
    recommendations: list[RecommendedCourse]


def _enrolled(connection: sa.Connection, course_id: str, user_id: int) -> bool:
    e = schema.enrollments
    return connection.execute(sa.select(sa.literal(1)).where(e.c.course_id == course_id, e.c.user_id == user_id)).first() is not None


def _not_enrolled() -> ApiError:
    return ApiError(404, "no learner with this id is enrolled in the course", field="user_id", location="path")


fitted_recommenders: ExpiringCache[course_recommender.Recommender] = ExpiringCache(RECOMMENDER_SECONDS)  # per database


def recommended_courses(connection: sa.Connection, principal: Principal, course: dict, user_id: int, today: date, limit: int) -> dict:
    recommender = fitted_recommenders.get(str(connection.engine.url), lambda: course_recommender.fitted_on_everything(connection))
    enrolled_now = connection.execute(sa.select(schema.enrollments.c.course_id).where(schema.enrollments.c.user_id == user_id)).scalars().all()
    listed = course_recommender.recommend(recommender, user_id, today, limit, visible=lambda row: principal.may_see(row["course_id"], row["org"]),
                                          enrolled_now=[course["course_id"], *enrolled_now])
    for row in listed:
        row["state"] = str(state_of(CourseCalendar(row["course_id"], row["start"], row["end"]), today))
    enrolments = recommender.catalogue.enrolments
    taken = enrolments.loc[enrolments["user_id"] == user_id, "subject"].nunique()
    return {"course_id": course["course_id"], "user_id": user_id, "courses_taken": int(taken), "weights": course_recommender.WEIGHTS, "recommendations": listed}


def learner_next_steps_now(request: Request, connection: sa.Connection, course: dict, user_id: int, limit: int) -> dict | None:
    """The learner's next steps from the course's context of today, which every learner of the
    course shares: kept in the run cache while the course's runs are unchanged (a refresh,
    which replaces the raw rows, ends with new predictions)."""
    today = request.app.state.settings.clock.today()
    context = request.app.state.run_cache.get(connection, f"next_steps {today}", course["course_id"], lambda: next_steps.course_context(connection, course, today))
    return next_steps.next_steps_in(context, user_id, limit)


def what_to_do_next(request: Request, connection: sa.Connection, principal: Principal, course: dict, user_id: int) -> dict:
    """Both recommenders for the learner page (the learner is known to be enrolled)."""
    return {
        "steps": learner_next_steps_now(request, connection, course, user_id, next_steps.DEFAULT_LIMIT),
        "courses": recommended_courses(connection, principal, course, user_id, request.app.state.settings.clock.today(), course_recommender.DEFAULT_LIMIT),
    }


@router.get("/courses/{course_id}/students/{user_id}/next-steps", response_model=NextSteps, responses=ERRORS,
            summary="What a learner could do next in the course: items classmates who passed had done by this week")
def learner_next_steps(request: Request, principal: Token, course_id: CourseId, user_id: UserId, limit: ItemLimit = next_steps.DEFAULT_LIMIT) -> Response:
    """Units, videos and H5P exercises the learner has not done that most of those who passed had
    done by this course week, ranked by how much more often they had than the others. Says
    whom the learner was compared with: the same course's earlier runs, or, when they have
    too few passers, this run's top third by grade."""
    course = visible_course(request, principal, course_id)
    with reading(request) as connection:
        found = learner_next_steps_now(request, connection, course, user_id, limit)
    if found is None:
        raise _not_enrolled()
    return checked(NextSteps, found)


@router.get("/courses/{course_id}/students/{user_id}/course-recommendations", response_model=CourseRecommendations, responses=ERRORS,
            summary="Next courses for a learner: content, collaborative filtering, rules and popularity")
def learner_course_recommendations(request: Request, principal: Token, course_id: CourseId, user_id: UserId, limit: CourseLimit = course_recommender.DEFAULT_LIMIT) -> Response:
    """Courses open for enrolment (not ended), of subjects the learner has not taken, that this
    token may see, best first by the hybrid score, with each part."""
    course = visible_course(request, principal, course_id)
    with reading(request) as connection:
        if not _enrolled(connection, course_id, user_id):
            raise _not_enrolled()
        found = recommended_courses(connection, principal, course, user_id, request.app.state.settings.clock.today(), limit)
    return checked(CourseRecommendations, found)
