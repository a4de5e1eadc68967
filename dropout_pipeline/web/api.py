"""The JSON API under /api/v1 (OpenAPI at /docs): courses, risk lists, statistics, learners,
refresh runs, models and feedback. Every route names its errors in the schema; every one
but the schema itself needs a bearer token."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.lifecycle.plan import state_of
from dropout_pipeline.storage.model_tables import model_for_course
from dropout_pipeline.clock import utc_now
from dropout_pipeline.csv_cells import neutralised
from dropout_pipeline.storage.web_tables import Principal, feedback_for_learner, feedback_for_prediction, record_feedback
from dropout_pipeline.web import queries, risk_list, schemas
from dropout_pipeline.web.auth import ApiError, api_principal, reading, require_admin, require_course
from dropout_pipeline.web.dagster_instance import RefreshRefused
from dropout_pipeline.web.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/api/v1")

ERRORS = {status: {"model": schemas.Error} for status in (401, 403, 404, 422)}
BIGINT = 2**63 - 1

CourseId = Annotated[str, Path(description="the course key, e.g. course-v1:UEL+PY101+2026_S2 (`+` and `:` as they are, or percent-encoded)", max_length=255)]
UserId = Annotated[int, Path(ge=0, le=BIGINT)]
Levels = Annotated[list[Literal["HIGH", "MEDIUM", "LOW", "NONE"]], Query(description="risk levels to list (repeatable); NONE: not predicted yet")]
Sort = Annotated[Literal[risk_list.SORTS], Query(description="risk (fail), dropout_risk, change (since the previous week), name, user_id")]  # type: ignore[valid-type]
Order = Annotated[Literal["desc", "asc"], Query()]
Page = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"at most {MAX_PAGE_SIZE}")]
Token = Annotated[Principal, Depends(api_principal)]


def checked(model: type[BaseModel], content: dict) -> Response:
    """A body checked against its schema and written as JSON in one pass (pydantic's own
    serializer). FastAPI would check a returned dict the same way and then serialize it
    again: for a risk list of 50 learners with their reasons, that doubled the time the
    app spends on a request."""
    return Response(model.model_validate(content).model_dump_json(by_alias=True), media_type="application/json")


def _engine(request: Request):
    return request.app.state.engine


def visible_course(request: Request, principal: Principal, course_id: str) -> dict:
    """The course, if it exists (404) and the token may see it (403)."""
    with reading(request) as connection:
        course = request.app.state.course_cache.course(connection, course_id)
    if course is None:
        raise ApiError(404, "no course has this id", field="course_id", location="path")
    require_course(principal, course)
    return course


@router.get("/courses", response_model=schemas.CourseList, responses=ERRORS, summary="The courses this token may see")
def list_courses(request: Request, principal: Token) -> Response:
    with reading(request) as connection:
        return checked(schemas.CourseList, {"courses": queries.courses_overview(connection, principal, request.app.state.settings.clock.today())})


@router.get("/courses/{course_id}/students", response_model=schemas.StudentPage, responses=ERRORS, summary="A course's risk list")
def list_students(
    request: Request, principal: Token, course_id: CourseId, level: Levels = [], sort: Sort = "risk", order: Order = "desc",  # noqa: B006
    page: Page = 1, page_size: PageSize = DEFAULT_PAGE_SIZE,
) -> Response:
    """Every enrolled learner with the latest prediction, its reasons and its change since
    the previous week; a learner not predicted yet has no score and says so."""
    visible_course(request, principal, course_id)
    with reading(request) as connection:
        return checked(schemas.StudentPage, risk_list.students_page(connection, course_id, level, sort, order == "desc", page, page_size, request.app.state.run_cache))


CSV_COLUMNS = (
    "user_id", "username", "full_name", "email", "status", "risk_level", "fail_risk_score", "dropout_risk_score", "change", "previous_score",
    "on_worklist", "reasons", "dropout_reasons", "snapshot_date", "snapshot_grade", "snapshot_completion_rate", "predicted_at", "model",
    "latest_feedback",
)
def _csv_row(student: dict) -> list:
    reasons = lambda listed: "; ".join(r["text"] for r in listed or [])  # noqa: E731
    feedback = student["latest_feedback"]
    cells = {
        **student,
        "previous_score": student["previous"]["fail_risk_score"] if student["previous"] else None,
        "reasons": reasons(student["reasons"]),
        "dropout_reasons": reasons(student["dropout_reasons"]),
        "latest_feedback": f"{feedback['action']} by {feedback['created_by']} at {feedback['created_at']:%Y-%m-%d %H:%M}" if feedback else "",
    }
    return [neutralised("" if cells[name] is None else cells[name]) for name in CSV_COLUMNS]


@router.get(
    "/courses/{course_id}/students.csv", response_class=StreamingResponse, summary="A course's risk list as CSV",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "one row per learner"}, **ERRORS},
)
def export_students(request: Request, principal: Token, course_id: CourseId, level: Levels = [], sort: Sort = "risk", order: Order = "desc"):  # noqa: B006
    visible_course(request, principal, course_id)
    engine = _engine(request)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        with engine.connect() as connection:
            for student in risk_list.all_students(connection, course_id, level, sort, order == "desc"):
                writer.writerow(_csv_row(student))
                if buffer.tell() > 65536:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    filename = f"risk-list-{course_id}.csv"
    ascii_name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in filename)
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})


@router.get("/courses/{course_id}/statistics", response_model=schemas.Statistics, responses=ERRORS, summary="A course week by week")
def course_statistics(request: Request, principal: Token, course_id: CourseId) -> Response:
    course = visible_course(request, principal, course_id)
    with reading(request) as connection:
        return checked(schemas.Statistics, queries.course_statistics(connection, course, request.app.state.run_cache))


@router.get("/courses/{course_id}/students/{user_id}", response_model=schemas.Learner, responses=ERRORS, summary="A learner: features, timeline, reasons, feedback")
def learner(request: Request, principal: Token, course_id: CourseId, user_id: UserId) -> Response:
    course = visible_course(request, principal, course_id)
    with reading(request) as connection:
        found = queries.learner(connection, course, user_id)
        if found is None:
            raise ApiError(404, "no learner with this id is enrolled in the course", field="user_id", location="path")
        found["feedback"] = feedback_for_learner(connection, course_id, user_id)
    return checked(schemas.Learner, found)


@router.post(
    "/courses/{course_id}/predict", status_code=202, response_model=schemas.RunQueued,
    responses={**ERRORS, 409: {"model": schemas.Error, "description": "the course cannot be refreshed now"}},
    summary="Queue the course's refresh (pull, features, predictions) as a Dagster run",
)
def predict(request: Request, principal: Token, course_id: CourseId) -> dict:
    """The daemon dequeues and runs it; follow it at `status_url`. A refresh of the course
    already queued or running is returned rather than a second one queued."""
    course = visible_course(request, principal, course_id)
    today = request.app.state.settings.clock.today()
    phase = str(state_of(CourseCalendar(course_id, course["start"], course["end"]), today))
    if phase != "running":
        raise ApiError(409, f"the course is {phase}: only a running course is refreshed", field="course_id", location="path")
    with reading(request) as connection:
        if model_for_course(connection, course_id) is None:
            raise ApiError(409, "no fail-risk model is trained yet: the course is predicted once the first one is", field="course_id", location="path")
    try:
        run_id, queued = request.app.state.dagster.queue_refresh(course_id, today, principal.name)
    except RefreshRefused as refused:
        raise ApiError(409, str(refused), field="course_id", location="path") from None
    return {"run_id": run_id, "course_id": course_id, "queued": queued, "status_url": f"/api/v1/runs/{run_id}"}


@router.get("/runs/{run_id}", response_model=schemas.RunStatus, responses=ERRORS, summary="A run's status")
def run_status(request: Request, principal: Token, run_id: Annotated[str, Path(max_length=64)]) -> dict:
    status = request.app.state.dagster.run_status(run_id)
    if status is None:
        raise ApiError(404, "no run has this id", field="run_id", location="path")
    if not principal.is_admin:
        course_id = status["course_id"]
        with reading(request) as connection:
            course = request.app.state.course_cache.course(connection, course_id) if course_id else None
        if course is None or not principal.may_see(course_id, course["org"]):
            raise ApiError(403, "this token's scope does not include the run's course", field="run_id", location="path")
    return status


@router.get("/models", response_model=schemas.ModelList, responses=ERRORS, summary="Every model and its versions (admins)")
def list_models(request: Request, principal: Token) -> dict:
    require_admin(principal)
    with reading(request) as connection:
        return {"models": queries.models(connection)}


def performance_with_reliability(request: Request, model_name: str) -> dict | None:
    with reading(request) as connection:
        found = queries.model_performance(connection, model_name)
    if found is not None:
        for version in found["versions"]:
            version["reliability"] = request.app.state.dagster.reliability(model_name, version["model_version"])
    return found


@router.get("/models/{model_name}/performance", response_model=schemas.ModelPerformance, responses=ERRORS, summary="A model's metrics on held-out courses (admins)")
def model_performance(request: Request, principal: Token, model_name: Annotated[str, Path(max_length=100)]) -> dict:
    require_admin(principal)
    found = performance_with_reliability(request, model_name)
    if found is None:
        raise ApiError(404, "no model has this name", field="model_name", location="path")
    return found


def feedback_target(request: Request, principal: Principal, prediction_id: int) -> dict:
    with reading(request) as connection:
        prediction = queries.prediction_row(connection, prediction_id)
        course = request.app.state.course_cache.course(connection, prediction["course_id"]) if prediction else None
    if prediction is None or course is None:
        raise ApiError(404, "no prediction has this id", field="prediction_id", location="path")
    if not principal.may_see(course["course_id"], course["org"]):
        raise ApiError(403, "this token's scope does not include the prediction's course", field="prediction_id", location="path")
    return prediction


@router.post(
    "/predictions/{prediction_id}/feedback", status_code=201, response_model=schemas.FeedbackEntry, responses=ERRORS,
    summary="Record a teacher's action on a flag (append-only)",
)
def give_feedback(request: Request, principal: Token, prediction_id: Annotated[int, Path(ge=0, le=BIGINT)], body: schemas.FeedbackIn) -> dict:
    prediction = feedback_target(request, principal, prediction_id)
    with _engine(request).begin() as connection:
        return record_feedback(connection, prediction, body.action, body.note, principal, utc_now())


@router.get("/predictions/{prediction_id}/feedback", response_model=list[schemas.FeedbackEntry], responses=ERRORS, summary="The actions taken on a flag")
def list_feedback(request: Request, principal: Token, prediction_id: Annotated[int, Path(ge=0, le=BIGINT)]) -> list[dict]:
    feedback_target(request, principal, prediction_id)
    with reading(request) as connection:
        return feedback_for_prediction(connection, prediction_id)
