"""The simulator's HTTP server: both APIs of the contract on one port, plus fault injection.

MOOC API under `/mooc`, H5P API under `/h5p`; `/_sim/...` is the simulator's own
control surface (not part of the contract): change faults, publish a new course,
unenrol a learner, move the clock (to a day, or to a moment of it), health.

The platform's clock has a time of day: asked without `as_of` (or `as_of` a day not over
yet), it answers the present, what had happened by then, as a real platform does; a
clock moved to a bare date runs the real time of day on that date, as the product's own
clock pinned to a date does (dropout_pipeline.clock). Async (Starlette on uvicorn) so hundreds of
concurrent H5P calls with injected latency are served without a thread per request.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time as time_of_day

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dropout_pipeline.simulator import views
from dropout_pipeline.simulator.world import PLATFORM_TZ, CourseLearners, CourseSpec, WorldSettings, build_catalog, generate_learners, new_course

DEFAULT_SESSION_ID = "simulator-session"
DEFAULT_TOKEN = "simulator-token"


@dataclass(frozen=True)
class Faults:
    """Misbehaviour to inject; rates are per request, in [0, 1]."""

    h5p_latency_ms: float = 0.0
    mooc_latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after_seconds: float = 1.0
    malformed_rate: float = 0.0
    malformed_kind: str = "json"  # "json": not JSON at all; "field": a required field missing
    path_prefix: str = ""  # faults hit only requests under this path ("" = all)
    after_requests: int = 0  # ...and only after this many of those requests went well (a failure midway)
    ignore_as_of_prefix: str = ""  # endpoints under this path answer the present state whatever `as_of` says
    # A platform that does not know a course before its start (the contract allows it): as of
    # any earlier day, GET /courses/ leaves the course out and its endpoints answer 404.
    unlisted_before_start: bool = False


@dataclass
class SimulatorState:
    world: WorldSettings
    session_id: str = DEFAULT_SESSION_ID
    token: str = DEFAULT_TOKEN
    faults: Faults = field(default_factory=Faults)
    new_course_after_seconds: float | None = None
    clock: date | None = None  # the platform's today; starts at world.today, moved by /_sim/clock
    clock_time: time_of_day | None = None  # its time of day; None: the real time of day at the platform (UTC+7)
    courses: dict[str, CourseSpec] = field(default_factory=dict)
    unenrolled: set[tuple[str, int]] = field(default_factory=set)
    hidden_until: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    requests_served: int = 0
    h5p_in_flight: int = 0
    h5p_peak_in_flight: int = 0  # the most H5P calls served at once: what a client's limit allowed
    _learners: dict[str, CourseLearners] = field(default_factory=dict)
    _pages: OrderedDict = field(default_factory=OrderedDict)
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _fault_eligible: int = 0

    def set_faults(self, faults: Faults) -> None:
        """A new fault plan; its `after_requests` counts from now."""
        self.faults = faults
        self._fault_eligible = 0

    def faults_apply(self, request: Request) -> bool:
        """Whether this request is one the fault plan targets (and counts it)."""
        if not request.url.path.startswith(self.faults.path_prefix):
            return False
        self._fault_eligible += 1
        return self._fault_eligible > self.faults.after_requests

    def __post_init__(self) -> None:
        self.clock = self.clock or self.world.today
        for spec in build_catalog(self.world):
            self.courses[spec.course_id] = spec
        if self.new_course_after_seconds is not None:
            self.publish_course(delay_seconds=self.new_course_after_seconds)

    def reset_disturbances(self) -> None:
        """Back to the world as built: no faults, nobody unenrolled, the clock at world.today."""
        self.set_faults(Faults())
        self.unenrolled.clear()
        self.set_clock(self.world.today)

    def set_clock(self, today: date, at: time_of_day | None = None) -> None:
        """Move the platform's today (either way), and its time of day (None: the real one):
        the catalogue and every answer follow."""
        self.clock, self.clock_time = today, at
        self._pages.clear()

    def now(self) -> datetime:
        """The platform's present (naive, its local time), to the minute."""
        at = self.clock_time or datetime.now(PLATFORM_TZ).time()
        return datetime.combine(self.clock, at.replace(second=0, microsecond=0))

    def knows(self, spec: CourseSpec, day: date) -> bool:
        """Whether the platform lists the course as of `day`."""
        listed = spec.listed_from is None or spec.listed_from <= day
        return listed and not (self.faults.unlisted_before_start and day < spec.start)

    def publish_course(self, n_learners: int | None = None, delay_seconds: float = 0.0, start: date | None = None, weeks: int = 12) -> CourseSpec:
        spec = new_course(self.world, len(self.hidden_until) + 1, self.clock, n_learners, start, weeks)
        self.courses[spec.course_id] = spec
        self.hidden_until[spec.course_id] = time.monotonic() + delay_seconds
        return spec

    def unenrol(self, course_id: str, user_id: int) -> None:
        """The learner leaves the course: gone from every list, 404 on the H5P API."""
        self.unenrolled.add((course_id, user_id))
        self._pages.clear()

    def listed_courses(self) -> list[CourseSpec]:
        now = time.monotonic()
        return [
            c for c in self.courses.values()
            if self.hidden_until.get(c.course_id, 0) <= now and self.knows(c, self.clock)
        ]

    def enrolled(self, learners: CourseLearners, day: float) -> np.ndarray:
        """Indices of the learners enrolled by the end of `day` who have not left."""
        indices = views.visible(learners, day)
        gone = [user_id for course_id, user_id in self.unenrolled if course_id == learners.spec.course_id]
        return indices[~np.isin(learners.user_ids[indices], gone)] if gone else indices

    def learners(self, course_id: str) -> CourseLearners | None:
        spec = next((c for c in self.listed_courses() if c.course_id == course_id), None)
        if spec is None:
            return None
        if course_id not in self._learners:
            self._learners[course_id] = generate_learners(spec)
        return self._learners[course_id]

    def cached_list(self, key: tuple, build) -> list[dict]:
        """MOOC list answers per (endpoint, course, day): computed once, paged many times."""
        if key not in self._pages:
            self._pages[key] = build()
            if len(self._pages) > 256:
                self._pages.popitem(last=False)
        return self._pages[key]


def _error(status: int, detail: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _misbehave(state: SimulatorState, api: str, targeted: bool) -> Response | None:
    """Latency, then maybe a 503 or a 429, as the fault plan says."""
    faults = state.faults
    state.requests_served += 1
    latency = faults.h5p_latency_ms if api == "h5p" else faults.mooc_latency_ms
    if latency:
        await asyncio.sleep(latency / 1000)
    if not targeted:
        return None
    draw = state._random.random()
    if draw < faults.error_rate:
        return _error(503, "simulated transient failure")
    if draw < faults.error_rate + faults.rate_limit_rate:
        return _error(429, "slow down", headers={"Retry-After": f"{faults.retry_after_seconds:g}"})
    return None


def _answer(state: SimulatorState, body: dict, targeted: bool) -> Response:
    if targeted and state.faults.malformed_rate and state._random.random() < state.faults.malformed_rate:
        if state.faults.malformed_kind == "json":
            return Response(b'{"count": 3, "results": [{"user_id": 1,', media_type="application/json")
        body = dict(body)
        if "results" in body:
            body["results"] = [{k: v for k, v in r.items() if k != "user_id"} for r in body["results"]]
        else:
            body.pop("user_id", None)
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")


def _paged(request: Request, state: SimulatorState, rows: list[dict], targeted: bool) -> Response:
    try:
        page = max(1, int(request.query_params.get("page", "1")))
        page_size = min(1000, max(1, int(request.query_params.get("page_size", "100"))))
    except ValueError:
        return _error(400, "page and page_size must be integers")
    start = (page - 1) * page_size
    more = start + page_size < len(rows)
    return _answer(
        state,
        {
            "count": len(rows),
            "next": str(request.url.include_query_params(page=page + 1, page_size=page_size)) if more else None,
            "previous": str(request.url.include_query_params(page=page - 1, page_size=page_size)) if page > 1 else None,
            "results": rows[start : start + page_size],
        },
        targeted,
    )


def build_app(state: SimulatorState) -> Starlette:
    def as_of(request: Request) -> tuple[date | None, Response | None]:
        """The `as_of` asked (None: the present; also when the fault plan ignores it), or a 400."""
        ignored = state.faults.ignore_as_of_prefix and request.url.path.startswith(state.faults.ignore_as_of_prefix)
        try:
            return views.parse_as_of(None if ignored else request.query_params.get("as_of")), None
        except ValueError:
            return None, _error(400, "as_of must be YYYY-MM-DD")

    def moment(request: Request, learners: CourseLearners) -> tuple[float | None, Response | None]:
        """The day of the course an answer describes (views.answer_day), or the refusal: a 400
        for a bad `as_of`, a 404 for a course the platform did not know then."""
        asked, problem = as_of(request)
        if problem:
            return None, problem
        if not state.knows(learners.spec, min(asked or state.clock, state.clock)):
            return None, _error(404, f"Course {learners.spec.course_id} not found.")
        return views.answer_day(learners, asked, state.now()), None

    async def admit_mooc(request: Request) -> tuple[Response | None, bool]:
        """The cookie check, then the fault plan: (a refusal or None, whether faults target it)."""
        if request.cookies.get("sessionid") != state.session_id:
            return _error(401, "Authentication credentials were not provided or are invalid."), False
        targeted = state.faults_apply(request)
        return await _misbehave(state, "mooc", targeted), targeted

    async def mooc_courses(request: Request) -> Response:
        refusal, targeted = await admit_mooc(request)
        if refusal is not None:
            return refusal
        asked, problem = as_of(request)
        if problem:
            return problem
        day = min(asked or state.clock, state.clock)
        listed = [c.listing() for c in state.listed_courses() if state.knows(c, day)]
        return _paged(request, state, listed, targeted)

    def mooc_export(kind: str, build):
        async def endpoint(request: Request) -> Response:
            refusal, targeted = await admit_mooc(request)
            if refusal is not None:
                return refusal
            course_id = request.path_params["course_id"]
            learners = state.learners(course_id)
            if learners is None:
                return _error(404, f"Course {course_id} not found.")
            day, problem = moment(request, learners)
            if problem:
                return problem
            rows = state.cached_list((kind, course_id, day), lambda: build(learners, day, state.enrolled(learners, day)))
            return _paged(request, state, rows, targeted)

        return endpoint

    def h5p(view):
        async def endpoint(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {state.token}":
                return _error(401, "Invalid or missing bearer token.")
            targeted = state.faults_apply(request)
            state.h5p_in_flight += 1
            state.h5p_peak_in_flight = max(state.h5p_peak_in_flight, state.h5p_in_flight)
            try:
                failure = await _misbehave(state, "h5p", targeted)
            finally:
                state.h5p_in_flight -= 1
            if failure is not None:
                return failure
            learners = state.learners(request.path_params["course_id"])
            if learners is None:
                return _error(404, "Course not found.")
            index = learners.index_of.get(request.path_params["user_id"])
            day, problem = moment(request, learners)
            if problem:
                return problem
            user_id = request.path_params["user_id"]
            if index is None or learners.enrolment_day[index] >= day or (learners.spec.course_id, user_id) in state.unenrolled:
                return _error(404, "User not enrolled in this course.")
            return _answer(state, view(learners, index, day), targeted)

        return endpoint

    async def set_faults(request: Request) -> Response:
        state.set_faults(replace(state.faults, **(await request.json())))
        return JSONResponse(asdict(state.faults))

    async def add_course(request: Request) -> Response:
        body = await request.json() if (await request.body()) else {}
        start = date.fromisoformat(body["start"]) if body.get("start") else None
        spec = state.publish_course(body.get("n_learners"), float(body.get("delay_seconds", 0)), start, int(body.get("weeks", 12)))
        return JSONResponse(spec.listing())

    async def unenrol(request: Request) -> Response:
        body = await request.json()
        state.unenrol(body["course_id"], int(body["user_id"]))
        return JSONResponse({"unenrolled": len(state.unenrolled)})

    async def set_clock(request: Request) -> Response:
        """`{"today": "YYYY-MM-DD"}` (the real time of day on that date) or `"YYYY-MM-DDTHH:MM"`."""
        value = (await request.json())["today"]
        if "T" in value:
            moment_ = datetime.fromisoformat(value)
            state.set_clock(moment_.date(), moment_.time())
        else:
            state.set_clock(date.fromisoformat(value))
        return JSONResponse({"today": state.clock.isoformat(), "now": state.now().isoformat()})

    async def health(_request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "today": state.clock.isoformat(),
                "now": state.now().isoformat(),
                "courses": len(state.listed_courses()),
                "requests_served": state.requests_served,
                "h5p_peak_in_flight": state.h5p_peak_in_flight,
            }
        )

    enrollments = lambda learners, day, idx: [views.enrollment(learners, i, day) for i in idx]  # noqa: E731
    routes = [
        Route("/mooc/courses/", mooc_courses),
        Route("/mooc/course-enrollments-attributes/{course_id:path}/", mooc_export("enrollments", enrollments)),
        Route("/mooc/export/student-grades/{course_id:path}/", mooc_export("grades", views.grades)),
        Route("/mooc/export/student-progress/{course_id:path}/", mooc_export("progress", views.progress)),
        Route("/mooc/export/student-discussions/{course_id:path}/", mooc_export("discussions", views.discussions)),
        Route("/mooc/export/complete-student-data/{course_id:path}/", mooc_export("complete", views.complete_student)),
        Route("/h5p/scores/{user_id:int}/{course_id:path}", h5p(views.h5p_scores)),
        Route("/h5p/video-progress/{user_id:int}/{course_id:path}", h5p(views.video_progress)),
        Route("/h5p/dashboard/{user_id:int}/{course_id:path}", h5p(views.dashboard)),
        Route("/_sim/faults", set_faults, methods=["POST"]),
        Route("/_sim/courses", add_course, methods=["POST"]),
        Route("/_sim/unenrolments", unenrol, methods=["POST"]),
        Route("/_sim/clock", set_clock, methods=["POST"]),
        Route("/_sim/health", health),
    ]
    return Starlette(routes=routes)


def urls(host: str, port: int) -> tuple[str, str]:
    """(MOOC_API_URL, H5P_API_URL) of a simulator listening on host:port."""
    return f"http://{host}:{port}/mooc", f"http://{host}:{port}/h5p"



