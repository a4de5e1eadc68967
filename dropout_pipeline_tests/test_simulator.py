"""The simulator: deterministic, realistic, and able to replay any past date."""

from datetime import date, timedelta

import numpy as np

from dropout_pipeline.simulator import views
from dropout_pipeline.simulator.world import WorldSettings, build_catalog, generate_learners
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
