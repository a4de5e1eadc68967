"""A deterministic learning platform: courses, learners, and what they did day by day.

Two profiles. `default`: each learner gets an archetype (steady, struggling, sporadic,
crammer, early dropout, late dropout, never started) that sets a weekly engagement curve. Work is done in
release order (blocks, H5P quizzes, videos), so grades, progress, forum activity and,
in the end, pass/fail and dropout all *emerge* from behaviour week by week; no label
is drawn at random. Everything is precomputed as arrays of event days, so the state
on any date (`as_of`) is a comparison, cheap enough to answer thousands of calls a
second.

`realistic`: what a real open and distance learning platform looks like, where early
behaviour predicts the outcome only loosely. Engagement is heavy-tailed and noisy week to
week; learners withdraw by a weekly hazard of their own that is unrelated to how well
they started (and some of them unenrol); work bunches up before each weekly deadline,
comes late or never; ability is independent of engagement and marks are noisy, so the
same engagement ends in a pass for one learner and a fail for another. Courses have 30 to
5,000 learners, some have no H5P content or no videos, and only a few have finished when
the pipeline first looks. Outcome shares are about 45% pass, 30% withdraw, 25% fail for
semester courses; short MOOCs (six weeks or less) lose about 80%.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import cached_property

import numpy as np

PLATFORM_TZ = timezone(timedelta(hours=7))
PASS_CUTOFF = 0.5
BLOCKS_PER_WEEK = 10
H5P_PER_WEEK = 2
VIDEOS_PER_WEEK = 2
VIDEO_SECONDS = (300, 1200)

PROFILES = ("default", "realistic")
ARCHETYPES = ("steady", "struggling", "sporadic", "crammer", "early_dropout", "late_dropout", "never_started")
ARCHETYPE_WEIGHTS = (0.34, 0.14, 0.10, 0.08, 0.14, 0.12, 0.08)

CATALOG = (
    ("DHQG-HCM", "FM101", "Financial Markets 101"),
    ("UEL", "NLTT", "Principles of Statistics"),
    ("UEL", "PY101", "Python Programming"),
    ("DHQG-HCM", "DS201", "Data Science Foundations"),
    ("UEL", "EC101", "Microeconomics"),
    ("DHQG-HCM", "ML301", "Machine Learning"),
    ("UEL", "AC102", "Financial Accounting"),
    ("DHQG-HCM", "MK201", "Digital Marketing"),
)

FAMILY = ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ho", "Ngo", "Duong")
MIDDLE = ("Van", "Thi", "Minh", "Ngoc", "Duc", "Thanh", "Hoai", "Gia")
GIVEN = ("An", "Binh", "Chi", "Dung", "Giang", "Ha", "Khoa", "Linh", "Mai", "Nam", "Phuong", "Quang", "Son", "Trang", "Tuan", "Vy")


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _first_monday(year: int, month: int) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@dataclass(frozen=True)
class WorldSettings:
    seed: int = 42
    today: date = field(default_factory=date.today)
    past_semesters: int = 3
    courses_per_semester: int = 2
    running_courses: int = 2
    min_learners: int = 200
    max_learners: int = 600
    # Courses that start one after another around `today` (a rolling intake), each
    # listed two weeks before it starts: what a clock moving over months sees.
    rolling_courses: int = 0
    rolling_span_days: int = 120
    profile: str = "default"  # one of PROFILES

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown simulator profile {self.profile!r}: choose one of {', '.join(PROFILES)}")


def profile_settings(profile: str, **overrides) -> WorldSettings:
    """Settings typical of a profile: the realistic platform has few finished courses at
    first (one past semester of three) and courses of 30 to 5,000 learners."""
    typical = {"realistic": {"past_semesters": 1, "courses_per_semester": 3, "min_learners": 30, "max_learners": 5000}}.get(profile, {})
    return WorldSettings(**{**typical, **overrides, "profile": profile})


@dataclass(frozen=True)
class CourseSpec:
    course_id: str
    display_name: str
    org: str
    start: date
    weeks: int
    n_learners: int
    semester: str
    seed: int
    listed_from: date | None = None  # when it appears in GET /courses/; None: from the start
    profile: str = "default"
    has_h5p: bool = True  # False: the H5P API knows no content of it (grades come from the MOOC's own assignments)
    has_videos: bool = True

    @property
    def end(self) -> date:
        return self.start + timedelta(days=7 * self.weeks - 1)

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0, 0), PLATFORM_TZ)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end, time(23, 59, 59), PLATFORM_TZ)

    def listing(self) -> dict:
        return {
            "course_id": self.course_id,
            "display_name": self.display_name,
            "org": self.org,
            "start": self.start_at.isoformat(),
            "end": self.end_at.isoformat(),
            "enrollment_count": self.n_learners,
        }


def _course_shape(settings: WorldSettings, rng: np.random.Generator) -> dict:
    """Size and content of a course: uniform sizes by default; on the realistic platform,
    log-uniform sizes and some courses without H5P content or without videos."""
    if settings.profile == "default":
        return {"n_learners": int(rng.integers(settings.min_learners, settings.max_learners + 1))}
    size = np.exp(rng.uniform(np.log(settings.min_learners), np.log(settings.max_learners + 1)))
    missing = rng.choice(["none", "h5p", "videos"], p=(0.6, 0.2, 0.2))
    return {"n_learners": int(size), "profile": settings.profile, "has_h5p": missing != "h5p", "has_videos": missing != "videos"}


def semester_starts(today: date, count: int) -> list[tuple[str, date, int]]:
    """The `count` most recent finished semesters and the one running today, oldest first.

    S1 starts on the first Monday of February (15 weeks), S2 on the first Monday of
    September (15 weeks); between them a summer term S3 starts on the first Monday of
    June (10 weeks).
    """
    terms = []
    for year in range(today.year - 4, today.year + 1):
        terms += [(f"{year}_S1", _first_monday(year, 2), 15), (f"{year}_S3", _first_monday(year, 6), 10), (f"{year}_S2", _first_monday(year, 9), 15)]
    terms = [t for t in terms if t[1] <= today]
    finished = [t for t in terms if t[1] + timedelta(days=7 * t[2]) <= today and not t[0].endswith("S3")]
    running = [t for t in terms if t[1] + timedelta(days=7 * t[2]) > today]
    return finished[len(finished) - count :] + running[-1:]


def build_catalog(settings: WorldSettings) -> list[CourseSpec]:
    """Finished courses of past semesters, the courses running today, then the rolling intake."""
    courses = []
    terms = semester_starts(settings.today, settings.past_semesters)
    for term_index, (semester, start, weeks) in enumerate(terms):
        running = start + timedelta(days=7 * weeks) > settings.today
        n_courses = settings.running_courses if running else settings.courses_per_semester
        rng = _rng(settings.seed, semester)
        for slot in range(n_courses):
            org, code, title = CATALOG[(term_index * 3 + slot) % len(CATALOG)]
            courses.append(
                CourseSpec(
                    course_id=f"course-v1:{org}+{code}+{semester}",
                    display_name=title,
                    org=org,
                    start=start,
                    weeks=weeks,
                    semester=semester,
                    seed=settings.seed,
                    **_course_shape(settings, rng),
                )
            )
    return courses + rolling_intake(settings)


def _half_year(day: date) -> str:
    return f"{day.year}_S{1 if day.month < 7 else 2}"


def rolling_intake(settings: WorldSettings) -> list[CourseSpec]:
    """Courses of 4 to 10 weeks, each starting on a different Monday and ending on a
    different Sunday, their ends spread evenly over the span after `today`: some already
    running on `today`, the others starting later."""
    courses, starts = [], set()
    rng = _rng(settings.seed, "rolling")
    spacing = settings.rolling_span_days / (settings.rolling_courses + 1)
    for index in range(settings.rolling_courses):
        aimed_end = settings.today + timedelta(days=round((index + 1) * spacing))
        for weeks in sorted(range(4, 11), key=lambda w: (w - 4 - (index * 3) % 7) % 7):  # a varied length whose Monday is free
            start = aimed_end - timedelta(days=7 * weeks - 1)
            start -= timedelta(days=start.weekday())
            if start not in starts:
                break
        starts.add(start)
        org, code, title = CATALOG[index % len(CATALOG)]
        courses.append(
            CourseSpec(
                course_id=f"course-v1:{org}+{code}R{index + 1:02d}+{_half_year(start)}",
                display_name=f"{title} (intake {index + 1})",
                org=org,
                start=start,
                weeks=weeks,
                semester=_half_year(start),
                seed=settings.seed,
                listed_from=start - timedelta(days=14),
                **_course_shape(settings, rng),
            )
        )
    return courses


def new_course(settings: WorldSettings, index: int, today: date, n_learners: int | None = None, start: date | None = None, weeks: int = 12) -> CourseSpec:
    """A course published while the simulator runs: by default one that opened this week."""
    org, code, title = CATALOG[index % len(CATALOG)]
    start = start or today - timedelta(days=today.weekday())
    return CourseSpec(
        course_id=f"course-v1:{org}+{code}X{index}+NEW_{start:%Y%m%d}",
        display_name=f"{title} (new intake {index})",
        org=org,
        start=start,
        weeks=weeks,
        n_learners=n_learners or settings.min_learners,
        semester=f"{start.year}_NEW",
        seed=settings.seed,
        profile=settings.profile,
    )


def _engagement(archetype: str, weeks: int, rng: np.random.Generator) -> np.ndarray:
    """Work done per week, as a share of that week's released work (above 1: catching up)."""
    noise = rng.normal(0, 0.1, weeks)
    w = np.arange(weeks)
    if archetype == "steady":
        base = np.full(weeks, 0.9)
    elif archetype == "struggling":
        base, noise = np.full(weeks, 0.55), 1.5 * noise
    elif archetype == "sporadic":
        base = np.where(rng.random(weeks) < 0.5, 1.1, 0.05)
    elif archetype == "crammer":
        base = np.where(w >= weeks - 3, 2.6, 0.2)
    elif archetype == "early_dropout":
        base = np.where(w < rng.integers(1, 4), 0.7, 0.0)
    elif archetype == "late_dropout":
        base = np.where(w < rng.integers(int(weeks * 0.4), int(weeks * 0.75)), 0.8, 0.0)
    else:  # never_started
        base = np.zeros(weeks)
    # Noise perturbs weeks with engagement; a learner who has stopped stays stopped.
    return np.where(base > 0, np.clip(base + noise, 0.02, 3.0), 0.0)


def _completion_days(work: np.ndarray, per_week: int, deadline_rush: np.ndarray | None = None) -> np.ndarray:
    """Day (from course start) each item of a weekly-released stream is finished; inf: never.

    work[learner, week] is items' worth of effort; a learner cannot finish items not yet
    released, so effort beyond the released backlog is lost. A week's work is spread
    evenly over it, or, with `deadline_rush` (0 to 1 per learner), bunched towards its
    deadline at the end of the week.
    """
    n, weeks = work.shape
    n_items = per_week * weeks
    items = np.arange(n_items)[None, :]
    done = np.full((n, n_items), np.inf)
    pointer = np.zeros(n)
    for week in range(weeks):
        before = pointer.copy()
        pointer = np.minimum(pointer + work[:, week] * per_week, (week + 1) * per_week)
        gained = np.maximum(pointer - before, 1e-9)[:, None]
        finished_now = (items + 1 <= pointer[:, None] + 1e-9) & (items + 1 > before[:, None] + 1e-9)
        position = np.clip((items + 1 - before[:, None]) / gained, 0, 1)
        if deadline_rush is not None:
            position = position ** (1 - 0.9 * deadline_rush[:, None])
        day = 7 * week + position * 6.9
        done = np.where(finished_now, day, done)
    return done


@dataclass
class CourseLearners:
    """Every learner of one course, with the day (from course start) of every event."""

    spec: CourseSpec
    user_ids: np.ndarray
    archetypes: list[str]
    names: list[str]
    modes: list[str]
    enrolment_day: np.ndarray
    unenrol_day: np.ndarray  # inf: still enrolled
    block_done: np.ndarray
    h5p_done: np.ndarray
    h5p_percent: np.ndarray
    h5p_attempts: np.ndarray
    video_done: np.ndarray
    video_started: np.ndarray
    video_final_fraction: np.ndarray
    post_days: list[np.ndarray]
    post_kinds: list[np.ndarray]
    post_upvotes: list[np.ndarray]
    video_durations: np.ndarray
    h5p_content_ids: np.ndarray
    video_content_ids: np.ndarray

    @cached_property
    def index_of(self) -> dict[int, int]:
        return {int(u): i for i, u in enumerate(self.user_ids)}

    @cached_property
    def last_event_day(self) -> list[np.ndarray]:
        """Sorted event days per learner, for 'last activity as of day D' look-ups."""
        return [
            np.sort(
                np.concatenate(
                    [
                        row_b[np.isfinite(row_b)],
                        row_h[np.isfinite(row_h)],
                        row_v[np.isfinite(row_v)],
                        posts,
                    ]
                )
            )
            for row_b, row_h, row_v, posts in zip(self.block_done, self.h5p_done, self.video_started, self.post_days, strict=False)
        ]


@dataclass
class Behaviour:
    """Who the learners are and how much they work each week, before any item is timed."""

    archetypes: list[str]
    ability: np.ndarray
    enrolment_day: np.ndarray
    work: np.ndarray
    unenrol_day: np.ndarray
    deadline_rush: np.ndarray | None = None
    mark_noise: float = 15.0


def _archetype_behaviour(spec: CourseSpec, rng: np.random.Generator) -> Behaviour:
    n, weeks = spec.n_learners, spec.weeks
    archetypes = list(rng.choice(ARCHETYPES, size=n, p=ARCHETYPE_WEIGHTS))
    ability = np.array([rng.beta(7, 2) if a in ("steady", "crammer") else rng.beta(4, 3) if a != "struggling" else rng.beta(3, 4) for a in archetypes])
    enrolment_day = np.where(rng.random(n) < 0.75, -rng.uniform(0, 14, n), rng.uniform(0, 24, n))
    work = np.vstack([_engagement(a, weeks, rng) for a in archetypes])
    work[np.arange(weeks)[None, :] * 7 < enrolment_day[:, None] - 6] = 0.0  # nothing before enrolling
    return Behaviour(archetypes, ability, enrolment_day, work, np.full(n, np.inf))


SHORT_COURSE_WEEKS = 6  # a short MOOC: most of its learners leave


def _realistic_behaviour(spec: CourseSpec, rng: np.random.Generator) -> Behaviour:
    """Engagement that predicts the outcome only loosely (see the module docstring)."""
    n, weeks = spec.n_learners, spec.weeks
    short = weeks <= SHORT_COURSE_WEEKS
    week = np.arange(weeks)[None, :]
    enrolment_day = np.where(rng.random(n) < 0.6, -rng.uniform(0, 21, n), np.minimum(rng.exponential(8, n), 3.5 * weeks))
    first_week = np.floor(np.maximum(enrolment_day, 0) / 7)
    never_started = rng.random(n) < (0.35 if short else 0.05)
    # Withdrawal: each learner's own weekly hazard, drawn apart from how they work.
    hazard = rng.beta(2.0, 2.6 if short else 90.0, n)
    stop_week = first_week + rng.geometric(np.clip(hazard, 1e-4, 1.0))
    motivation = rng.lognormal(0.05, 0.5, n)  # heavy-tailed: a few do far more than the rest
    weekly = motivation[:, None] * rng.lognormal(0, 0.6, (n, weeks))
    skipped = rng.random((n, weeks)) < rng.beta(1, 7, n)[:, None]  # weeks lost to the rest of life
    active = (week >= first_week[:, None]) & (week < stop_week[:, None]) & ~skipped & ~never_started[:, None]
    work = np.where(active, np.clip(weekly, 0.02, 3.0), 0.0)
    withdrew = never_started | (stop_week < weeks)
    unenrols = withdrew & (rng.random(n) < 0.4)
    unenrol_day = np.where(unenrols, 7 * np.minimum(stop_week, weeks - 1) + rng.uniform(0, 10, n), np.inf)
    unenrol_day = np.maximum(unenrol_day, np.maximum(enrolment_day, 0) + 1)
    archetypes = np.where(never_started, "never_started", np.where(withdrew, "withdrew", "stayed")).tolist()
    ability = rng.beta(6, 2, n)  # independent of engagement: the same work earns different marks
    return Behaviour(archetypes, ability, enrolment_day, work, unenrol_day, deadline_rush=rng.beta(2, 2, n), mark_noise=22.0)


def generate_learners(spec: CourseSpec) -> CourseLearners:
    rng = _rng(spec.seed, spec.course_id)
    n, weeks = spec.n_learners, spec.weeks
    behaviour = _realistic_behaviour(spec, rng) if spec.profile == "realistic" else _archetype_behaviour(spec, rng)
    archetypes, ability, enrolment_day, work = behaviour.archetypes, behaviour.ability, behaviour.enrolment_day, behaviour.work
    rush = behaviour.deadline_rush
    videos_per_week = VIDEOS_PER_WEEK if spec.has_videos else 0

    block_done = _completion_days(work, BLOCKS_PER_WEEK, rush)
    h5p_done = _completion_days(work * rng.uniform(0.85, 1.05, (n, 1)), H5P_PER_WEEK, rush)
    video_work = work * rng.uniform(0.5, 1.0, (n, 1))
    video_done = _completion_days(video_work, videos_per_week, rush)
    n_h5p, n_video = weeks * H5P_PER_WEEK, weeks * videos_per_week
    h5p_percent = np.clip(ability[:, None] * 100 + rng.normal(0, behaviour.mark_noise, (n, n_h5p)), 0, 100).round(1)
    h5p_attempts = 1 + rng.poisson(np.clip(1.5 - ability, 0.1, None)[:, None], (n, n_h5p))

    # Videos are watched in order; the first unfinished one is left part-watched where
    # the learner's effort ran out.
    finished = np.isfinite(video_done)
    video_started = np.where(finished, np.maximum(video_done - rng.uniform(0.1, 2.0, video_done.shape), 0), np.inf)
    finished_videos = finished.sum(axis=1)
    partial = (finished_videos < n_video) & (work.sum(axis=1) > 0)
    video_final_fraction = np.where(partial, rng.uniform(0.1, 0.9, n), 0.0)
    for i in np.flatnonzero(partial):
        j = finished_videos[i]
        last_done = video_done[i, j - 1] if j > 0 else max(enrolment_day[i], 0) + 1
        video_started[i, j] = min(last_done + 0.5, 7 * weeks - 1)

    sociability = rng.gamma(1.0, 0.6, n)
    post_days, post_kinds, post_upvotes = [], [], []
    for i in range(n):
        counts = rng.poisson(np.minimum(work[i], 1.2) * sociability[i])
        days = np.concatenate([7 * w + rng.uniform(0, 6.9, c) for w, c in enumerate(counts)]) if counts.sum() else np.empty(0)
        post_days.append(np.sort(days))
        post_kinds.append(rng.choice(np.array(["thread", "comment", "question"]), size=len(days), p=(0.25, 0.6, 0.15)))
        post_upvotes.append(rng.poisson(0.8, len(days)))

    names = [f"{FAMILY[rng.integers(len(FAMILY))]} {MIDDLE[rng.integers(len(MIDDLE))]} {GIVEN[rng.integers(len(GIVEN))]}" for _ in range(n)]
    modes = ["verified" if (a in ("steady", "crammer") and rng.random() < 0.5) or rng.random() < 0.15 else "audit" for a in archetypes]
    base = int(_rng(spec.seed, "users").integers(100_000, 200_000))
    user_ids = base + rng.choice(60_000, size=n, replace=False)
    content_base = int(_rng(spec.seed, spec.course_id, "content").integers(1_000, 9_000)) * 100
    return CourseLearners(
        spec=spec,
        user_ids=user_ids,
        archetypes=archetypes,
        names=names,
        modes=modes,
        enrolment_day=enrolment_day,
        unenrol_day=behaviour.unenrol_day,
        block_done=block_done,
        h5p_done=h5p_done,
        h5p_percent=h5p_percent,
        h5p_attempts=h5p_attempts,
        video_done=video_done,
        video_started=video_started,
        video_final_fraction=video_final_fraction,
        post_days=post_days,
        post_kinds=post_kinds,
        post_upvotes=post_upvotes,
        video_durations=rng.integers(*VIDEO_SECONDS, n_video),
        h5p_content_ids=content_base + np.arange(n_h5p),
        video_content_ids=content_base + 50 + np.arange(n_video),
    )


WITHDRAWN_BEFORE_END_DAYS = 14


def true_outcomes(learners: CourseLearners) -> np.ndarray:
    """The world's own verdict on each learner enrolled at the end: 'withdrew' (unenrolled,
    or no work in the last fortnight), else 'passed' or 'failed' by the final grade. For
    checking a profile's outcome shares; the pipeline's labels are its own."""
    from dropout_pipeline.simulator import views

    end = views.day_of(learners, learners.spec.end)
    indices = views.visible(learners, end)
    passed = np.array([row["is_passed"] for row in views.grades(learners, end, indices)], dtype=bool)
    last = np.array([views.last_activity_day(learners, i, end) for i in indices], dtype=float)
    withdrew = ~(last >= end - WITHDRAWN_BEFORE_END_DAYS) | (learners.unenrol_day[indices] < end)
    return np.where(withdrew, "withdrew", np.where(passed, "passed", "failed"))


class _Recorded:
    """A generator that hands out exactly what the one it wraps draws, and keeps each draw."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.draws = rng, []

    def __getattr__(self, method: str):
        def draw(*args, **kwargs):
            value = getattr(self.rng, method)(*args, **kwargs)
            self.draws.append((method, value))
            return value

        return draw

    def nth(self, method: str, n: int = 0) -> np.ndarray:
        return [value for name, value in self.draws if name == method][n]


def hidden_state(spec: CourseSpec) -> tuple[Behaviour, dict[str, np.ndarray]]:
    """What the world drew for a course's learners before any of it happened, and the
    platform never shows: their Behaviour, as generate_learners starts from, and the draws
    behind it that set each learner's chances (realistic profile: the weekly withdrawal
    hazard, the week withdrawal comes, motivation, the share of weeks skipped), with each
    learner's share of work that goes to H5P content (`h5p_pace`). Read-only: the same
    draws from the course's own seed, in generate_learners' order; for measuring what a
    model could know at best (benchmarks/train.py's oracle)."""
    rng = _Recorded(_rng(spec.seed, spec.course_id))
    behaviour = _realistic_behaviour(spec, rng) if spec.profile == "realistic" else _archetype_behaviour(spec, rng)
    traits = {"h5p_pace": rng.rng.uniform(0.85, 1.05, (spec.n_learners, 1))[:, 0]}  # generate_learners' next draw
    if spec.profile == "realistic":
        first_week = np.floor(np.maximum(behaviour.enrolment_day, 0) / 7)
        traits |= {
            "first_week": first_week,
            "hazard": rng.nth("beta", 0),
            "stop_week": first_week + rng.nth("geometric", 0),  # the first week without work
            "motivation": rng.nth("lognormal", 0),
            "skip_rate": rng.nth("beta", 1),
        }
    return behaviour, traits
