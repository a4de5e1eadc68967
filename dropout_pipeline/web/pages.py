"""The pages, rendered on the server (Jinja2): login, courses, a course's risk list, a
learner, the admin's model pages. They use the same tokens as the API, through a login
form and a session cookie; every form carries the session's CSRF token."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from dropout_pipeline.clock import utc_now
from dropout_pipeline.predictions.queries import worklist
from dropout_pipeline.storage.web_tables import FEEDBACK_ACTIONS, close_session, feedback_for_learner, open_session, principal_for_token, record_feedback
from dropout_pipeline.web import api, charts, queries, recommendations, risk_list
from dropout_pipeline.web.auth import (
    CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSION_COOKIE, PageForbidden, PageSession, csrf_matches, page_session, reading,
)
from dropout_pipeline.web.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from dropout_pipeline.web.templating import templates

router = APIRouter(include_in_schema=False)
Session = Annotated[PageSession, Depends(page_session)]
ACTION_LABELS = {"contacted": "Contacted", "not_useful": "Not useful", "incorrectly_flagged": "Incorrectly flagged"}


def _render(request: Request, name: str, session: PageSession | None, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"session": session, "csrf_field": CSRF_FIELD, "action_labels": ACTION_LABELS, **context}, status_code=status
    )


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no //host): never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/courses"


def _cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax")


def _require_csrf(session: PageSession, given: str | None) -> None:
    if not csrf_matches(session.csrf, given):
        raise PageForbidden("The form's security token is missing or stale. Go back, reload the page and try again.")


def _page_course(request: Request, session: PageSession, course_id: str) -> dict:
    with reading(request) as connection:
        course = request.app.state.course_cache.course(connection, course_id)
    if course is None:
        raise api.ApiError(404, "no course has this id", field="course_id", location="path")
    if not session.principal.may_see(course["course_id"], course["org"]):
        raise PageForbidden("This course is outside your token's scope: ask an admin for a token that includes it.")
    return course


@router.get("/", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/courses", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None, failed: bool = False) -> HTMLResponse:  # noqa: A002 - the query's name
    from secrets import token_urlsafe

    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or token_urlsafe(32)
    response = _render(request, "login.html", None, status=401 if failed else 200, login_csrf=csrf, next=_safe_next(next), failed=failed)
    _cookie(response, LOGIN_CSRF_COOKIE, csrf, max_age=3600)
    return response


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=200)], csrf_token: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/courses") -> Response:  # noqa: A002
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        raise PageForbidden("The login form's security token is missing or stale: reload the login page and try again.")
    with request.app.state.engine.begin() as connection:
        principal = principal_for_token(connection, token.strip())
        if principal is None:
            return login_form(request, next=next, failed=True)
        cookie, _csrf = open_session(connection, principal.token_id, utc_now(), request.app.state.settings.session_lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _cookie(response, SESSION_COOKIE, cookie, max_age=int(request.app.state.settings.session_lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.post("/logout")
def logout(request: Request, session: Session, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    _require_csrf(session, csrf_token)
    with request.app.state.engine.begin() as connection:
        close_session(connection, session.cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response


@router.get("/courses", response_class=HTMLResponse)
def courses_page(request: Request, session: Session) -> HTMLResponse:
    with reading(request) as connection:
        listed = queries.courses_overview(connection, session.principal, request.app.state.settings.clock.today())
    return _render(request, "courses.html", session, courses=listed)


@router.get("/courses/{course_id}", response_class=HTMLResponse)
def course_page(
    request: Request, session: Session, course_id: Annotated[str, Path(max_length=255)],
    level: Annotated[Literal["", "HIGH", "MEDIUM", "LOW", "NONE"], Query()] = "",
    sort: Annotated[Literal[risk_list.SORTS], Query()] = "risk",  # type: ignore[valid-type]
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> HTMLResponse:
    course = _page_course(request, session, course_id)
    with reading(request) as connection:
        cache = request.app.state.run_cache
        listed = risk_list.students_page(connection, course_id, [level] if level else [], sort, order == "desc", page, page_size, cache)
        followed = worklist(connection, course_id).to_dict("records")
        statistics = queries.course_statistics(connection, course, cache)
    chart = charts.stacked_bars(
        statistics["weeks"], f"Learners per risk level, week by week, in {course_id}",
        "For each course week, the learners at high, medium and low fail risk in the week's last predictions.",
    )
    return _render(
        request, "course.html", session, course=course, listed=listed, worklist=followed, statistics=statistics, chart=chart,
        filters={"level": level, "sort": sort, "order": order, "page_size": page_size}, sorts=risk_list.SORTS,
        return_to=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/courses/{course_id}/students.csv")
def course_csv(request: Request, session: Session, course_id: Annotated[str, Path(max_length=255)],
               level: Annotated[Literal["", "HIGH", "MEDIUM", "LOW", "NONE"], Query()] = "") -> StreamingResponse:
    _page_course(request, session, course_id)
    return api.export_students(request, session.principal, course_id, [level] if level else [], "risk", "desc")


@router.get("/courses/{course_id}/students/{user_id}", response_class=HTMLResponse)
def learner_page(request: Request, session: Session, course_id: Annotated[str, Path(max_length=255)],
                 user_id: Annotated[int, Path(ge=0, le=api.BIGINT)]) -> HTMLResponse:
    course = _page_course(request, session, course_id)
    with reading(request) as connection:
        found = queries.learner(connection, course, user_id)
        if found is None:
            raise api.ApiError(404, "no learner with this id is enrolled in the course", field="user_id", location="path")
        feedback = feedback_for_learner(connection, course_id, user_id)
        next_up = recommendations.what_to_do_next(request, connection, session.principal, course, user_id)
    weekly = found["weekly"]
    chart = charts.line_chart(
        [
            charts.Series("fail risk", [(w["week"], w["fail_risk_score"]) for w in weekly], "#b00020"),
            charts.Series("dropout risk", [(w["week"], w["dropout_risk_score"]) for w in weekly], "#6a1b9a", "2 4"),
            charts.Series("grade %", [(w["week"], w["grade"]) for w in weekly], "#0b57d0", "8 4"),
        ],
        title=f"Risk and grade per course week for learner {user_id}",
        description="For each course week, the fail and dropout risk (0-100) of the week's last prediction and the grade it saw.",
        x_label="course week", y_label="risk / grade (%)", x_format=lambda x: f"{x:g}",
    ) if weekly else None
    latest = next((row for row in reversed(found["timeline"]) if row["is_latest"]), None)
    return _render(request, "learner.html", session, course=course, learner=found, feedback=feedback, chart=chart, latest=latest,
                   next_up=next_up, return_to=request.url.path)


@router.post("/predictions/{prediction_id}/feedback")
def feedback_form(
    request: Request, session: Session, prediction_id: Annotated[int, Path(ge=0, le=api.BIGINT)],
    action: Annotated[Literal[FEEDBACK_ACTIONS], Form()],  # type: ignore[valid-type]
    csrf_token: Annotated[str, Form(max_length=200)] = "", note: Annotated[str, Form(max_length=2000)] = "",
    return_to: Annotated[str, Form(max_length=2000)] = "/courses",
) -> Response:
    _require_csrf(session, csrf_token)
    try:
        prediction = api.feedback_target(request, session.principal, prediction_id)
    except api.ApiError as refused:
        if refused.status == 403:
            raise PageForbidden("This prediction's course is outside your token's scope.") from None
        raise
    with request.app.state.engine.begin() as connection:
        record_feedback(connection, prediction, action, note.replace("\x00", "").strip() or None, session.principal, utc_now())
    return RedirectResponse(_safe_next(return_to), status_code=303)


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, session: Session) -> HTMLResponse:
    if not session.principal.is_admin:
        raise PageForbidden("The model pages are for admins.")
    with reading(request) as connection:
        listed = queries.models(connection)
    return _render(request, "models.html", session, models=listed)


VERSION_DASHES = ("", "8 4", "2 4", "12 4 2 4")
VERSION_COLOURS = ("#0b57d0", "#b00020", "#1b6b2f", "#6a1b9a", "#8a5300")


@router.get("/models/{model_name}", response_class=HTMLResponse)
def model_page(request: Request, session: Session, model_name: Annotated[str, Path(max_length=100)]) -> HTMLResponse:
    if not session.principal.is_admin:
        raise PageForbidden("The model pages are for admins.")
    found = api.performance_with_reliability(request, model_name)
    if found is None:
        raise api.ApiError(404, "no model has this name", field="model_name", location="path")
    newest = found["versions"][:5]
    series = []
    for index, version in enumerate(newest):
        chosen = version["candidate"] or "catboost"
        points = [(row["week"], row["roc_auc"]) for row in version["per_week"] if row["scorer"] == chosen]
        series.append(charts.Series(f"v{version['model_version']} ({chosen})", points, VERSION_COLOURS[index % 5], VERSION_DASHES[index % 4]))
    by_week = charts.line_chart(
        series, f"ROC AUC per course week of {model_name}, by version",
        "For each version (its chosen candidate), the ROC AUC on held-out courses at each course week.",
        "course week", "ROC AUC", y_range=(0.5, 1.0), x_format=lambda x: f"{x:g}",
    )
    trend = charts.line_chart(
        [
            charts.Series("ROC AUC", [(t["model_version"], t["roc_auc"]) for t in found["trend"]], "#0b57d0"),
            charts.Series("weeks 1-4 ROC AUC", [(t["model_version"], t["early_weeks_roc_auc"]) for t in found["trend"]], "#b00020", "8 4"),
        ],
        f"Trend of {model_name} across versions", "Overall and early-warning ROC AUC on held-out courses, version by version.",
        "version", "ROC AUC", y_range=(0.5, 1.0), x_format=lambda x: f"v{x:g}",
    )
    current = found["versions"][0]
    reliability = current["reliability"]
    calibration = charts.line_chart(
        [charts.Series("observed rate", [(row["mean_predicted"], row["observed_rate"]) for row in reliability], "#0b57d0")],
        f"Calibration of {model_name} v{current['model_version']}", "Observed rate of the outcome against mean predicted risk, per bin of risk; the dashed diagonal is perfect calibration.",
        "mean predicted risk", "observed rate", x_range=(0, 1), y_range=(0, 1), diagonal=True,
    ) if reliability else None
    chosen = current["candidate"] or "catboost"
    overall = next((row for row in current["overall"] if row["scorer"] == chosen), None)
    return _render(request, "model.html", session, model=found, current=current, overall=overall, chosen=chosen,
                   by_week=by_week, trend=trend, calibration=calibration)
