"""The simulator: deterministic, realistic, and able to replay any past date."""

from datetime import date, timedelta

import numpy as np

from dropout_pipeline.simulator import views
from dropout_pipeline.simulator.world import SHORT_COURSE_WEEKS, WorldSettings, build_catalog, generate_learners, profile_settings, true_outcomes
from dropout_pipeline_tests.conftest import SMALL_WORLD, TODAY


def final_state(world: WorldSettings, index: int = 0):
    spec = build_catalog(world)[index]
    learners = generate_learners(spec)
    day = views.day_of(learners, spec.end)
    indices = views.visible(learners, day)
    return spec, learners, views.grades(learners, day, indices), views.progress(learners, day, indices)


def test_same_seed_gives_the_same_platform_and_another_seed_does_not():
    assert final_state(SMALL_WORLD)[2] == final_state(SMALL_WORLD)[2]
    other = WorldSettings(**{**SMALL_WORLD.__dict__, "seed": 8})
    assert final_state(other)[2] != final_state(SMALL_WORLD)[2]


def test_catalogue_has_finished_courses_of_past_semesters_and_running_ones():
    courses = build_catalog(WorldSettings(today=TODAY))
    finished = [c for c in courses if c.end < TODAY]
    running = [c for c in courses if c.start <= TODAY <= c.end]
    assert len({c.semester for c in finished}) == 3 and len(finished) == 6
    assert len(running) == 2
    assert all(200 <= c.n_learners <= 600 for c in courses)


def test_a_world_can_have_no_finished_courses():
    courses = build_catalog(WorldSettings(today=TODAY, past_semesters=0, running_courses=1))
    assert len(courses) == 1 and courses[0].start <= TODAY <= courses[0].end


def test_outcomes_emerge_from_behaviour_archetypes():
    world = WorldSettings(today=TODAY, min_learners=600, max_learners=600)
    spec, learners, grades, progress = final_state(world)
    passed = np.array([g["is_passed"] for g in grades])
    archetype = np.array(learners.archetypes)[views.visible(learners, views.day_of(learners, spec.end))]
    assert passed[archetype == "steady"].mean() > 0.7
    assert passed[archetype == "early_dropout"].mean() == 0
    assert passed[archetype == "never_started"].mean() == 0
    never = [p["last_activity"] is None for p, a in zip(progress, archetype, strict=False) if a == "never_started"]
    assert all(never)
    assert 0.2 < passed.mean() < 0.5  # a MOOC: most learners do not pass


def test_the_past_never_changes_as_time_goes_on():
    spec, learners, *_ = final_state(SMALL_WORLD)
    blocks = []
    for week in range(1, spec.weeks + 1):
        day = views.day_of(learners, spec.start + timedelta(days=7 * week - 1))
        indices = np.arange(len(learners.user_ids))
        blocks.append((learners.block_done[indices] < day).sum(axis=1))
    assert all((later >= earlier).all() for earlier, later in zip(blocks, blocks[1:], strict=False))


def test_a_course_published_while_running_appears_in_the_catalogue(simulator):
    before = {c.course_id for c in simulator.state.listed_courses()}
    listing = simulator.control("courses", {"n_learners": 30})
    after = {c.course_id for c in simulator.state.listed_courses()}
    assert after - before == {listing["course_id"]}
    assert date.fromisoformat(listing["start"][:10]) <= TODAY


REALISTIC = profile_settings("realistic", today=TODAY, rolling_courses=6)


def test_the_realistic_platform_starts_with_three_finished_courses_of_very_different_sizes_some_without_h5p_or_videos():
    courses = build_catalog(REALISTIC)
    assert len([c for c in courses if c.end < TODAY]) == 3
    sizes = [c.n_learners for c in courses]
    assert all(30 <= n <= 5000 for n in sizes) and min(sizes) < 150 and max(sizes) > 2000
    assert any(not c.has_h5p for c in courses) and any(not c.has_videos for c in courses)
    no_h5p = next(c for c in courses if not c.has_h5p)
    learners = generate_learners(no_h5p)
    end = views.day_of(learners, no_h5p.end)
    busy = int(np.argmax(np.isfinite(learners.h5p_done).sum(axis=1)))
    assert views.h5p_scores(learners, busy, end)["scores"] == [] and views.dashboard(learners, busy, end)["h5p_total_contents"] == 0
    assert views.grades(learners, end, np.array([busy]))[0]["percent_grade"] > 0  # graded in the MOOC all the same


def test_realistic_outcome_shares_are_those_of_open_and_distance_learning():
    semester, short = [], []
    for spec in build_catalog(REALISTIC):
        (short if spec.weeks <= SHORT_COURSE_WEEKS else semester if spec.weeks >= 10 else []).append(true_outcomes(generate_learners(spec)))
    semester, short = np.concatenate(semester), np.concatenate(short)
    share = lambda outcomes, kind: (outcomes == kind).mean()  # noqa: E731
    assert 0.40 < share(semester, "passed") < 0.52 and 0.24 < share(semester, "withdrew") < 0.36 and 0.18 < share(semester, "failed") < 0.30
    assert 0.70 < share(short, "withdrew") < 0.90


def test_realistic_learners_rush_before_deadlines_unenrol_and_vary_wildly():
    default_spec = build_catalog(SMALL_WORLD)[0]
    realistic_spec = next(c for c in build_catalog(REALISTIC) if c.end < TODAY)
    rushed = {}
    for name, spec in (("default", default_spec), ("realistic", realistic_spec)):
        learners = generate_learners(spec)
        finished = learners.h5p_done[np.isfinite(learners.h5p_done)]
        rushed[name] = np.mean(finished % 7 >= 5)  # the last two days before a weekly deadline
    assert rushed["default"] < 0.35 and rushed["realistic"] > 0.45
    learners = generate_learners(realistic_spec)
    end = views.day_of(learners, realistic_spec.end)
    listed = [views.enrollment(learners, i, end) for i in views.visible(learners, end)]
    inactive = [row for row in listed if not row["is_active"]]
    assert 0.03 < len(inactive) / len(listed) < 0.3  # unenrolled mid-course, still listed as inactive
    first = learners.unenrol_day[learners.index_of[inactive[0]["user_id"]]]
    assert views.enrollment(learners, learners.index_of[inactive[0]["user_id"]], first - 1)["is_active"]  # active before leaving
    posts = np.sort([len(days) for days in learners.post_days])[::-1]
    assert posts[: len(posts) // 10].sum() > 0.35 * posts.sum()  # a tenth of the learners write over a third of the forum


def _stamps(simulator, course_id: str, as_of: str | None = None) -> list[str]:
    """Every time the platform answers for a course's learners: last activity, H5P finishes, video watching."""
    import httpx

    from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
    from dropout_pipeline.source_api.client import encode_course_id

    query = {"page_size": 1000, **({"as_of": as_of} if as_of else {})}
    course = encode_course_id(course_id)
    with httpx.Client(base_url=simulator.base_url, timeout=10) as http:
        progress = http.get(f"/mooc/export/student-progress/{course}/", params=query, cookies={"sessionid": DEFAULT_SESSION_ID}).json()["results"]
        stamps = [row["last_activity"] for row in progress if row["last_activity"]]
        for row in progress:
            headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
            stamps += [s["finished_at"] for s in http.get(f"/h5p/scores/{row['user_id']}/{course}", params=query, headers=headers).json()["scores"]]
            stamps += [v["last_watched_at"] for v in http.get(f"/h5p/video-progress/{row['user_id']}/{course}", params=query, headers=headers).json()["videos"]]
    return stamps


def test_without_as_of_the_platform_answers_the_state_at_its_clocks_time_of_day_not_the_whole_day(simulator):
    """A platform asked at 06:00 has seen only the night's activity of that day: without `as_of`
    (and for an `as_of` of today, not over yet) it answers the present, moved by /_sim/clock."""
    course_id = course_ids_running(simulator)
    simulator.control("clock", {"today": f"{TODAY}T06:00"})
    at_six = _stamps(simulator, course_id)
    assert at_six == _stamps(simulator, course_id, as_of=TODAY.isoformat())  # today is not over: the present
    assert max(at_six) <= f"{TODAY}T06:00:00+07:00"
    simulator.control("clock", {"today": f"{TODAY}T23:59"})
    at_night = _stamps(simulator, course_id)
    assert max(at_night) > f"{TODAY}T06:00:00+07:00"  # the day's work, seen only once done
    assert max(_stamps(simulator, course_id, as_of=(TODAY - timedelta(days=1)).isoformat())) < f"{TODAY}T00:00:00+07:00"  # a day over: all of it


def course_ids_running(simulator) -> str:
    return next(c.course_id for c in simulator.state.listed_courses() if c.start <= TODAY <= c.end)


def test_a_platform_that_lists_no_course_before_its_start_answers_404_for_any_day_before_it():
    import httpx

    from dropout_pipeline.simulator.runner import simulator_thread
    from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, Faults, SimulatorState
    from dropout_pipeline.source_api.client import encode_course_id

    with simulator_thread(SimulatorState(world=SMALL_WORLD, faults=Faults(unlisted_before_start=True))) as simulator, httpx.Client(base_url=simulator.base_url, cookies={"sessionid": DEFAULT_SESSION_ID}, timeout=10) as http:
        upcoming = simulator.control("courses", {"n_learners": 30, "start": (TODAY + timedelta(days=7)).isoformat()})["course_id"]
        running = course_ids_running(simulator)
        start = next(c.start for c in simulator.state.listed_courses() if c.course_id == running)
        listed = {c["course_id"] for c in http.get("/mooc/courses/", params={"page_size": 1000}).json()["results"]}
        assert running in listed and upcoming not in listed
        grades = f"/mooc/export/student-grades/{encode_course_id(running)}/"
        assert http.get(grades, params={"as_of": (start - timedelta(days=1)).isoformat()}).status_code == 404
        assert http.get(grades, params={"as_of": start.isoformat()}).status_code == 200
        assert http.get(f"/mooc/export/student-grades/{encode_course_id(upcoming)}/").status_code == 404
