"""What to do next, on SQLite and PostgreSQL: within a course, items the learner has not done
that passers had done by this course week (hand-made runs whose answer is worked out below);
across courses, never a subject already taken nor a course closed, and an evaluation on a
time split computed by hand; the API over real HTTP (401, 403, 404, keys with `+` and `:`)
and the learner page's section."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.analytics import course_recommender, next_steps
from dropout_pipeline.analytics.course_keys import course_subject
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, engine_for, upgrade_schema
from dropout_pipeline.storage.web_tables import Principal
from dropout_pipeline.web.recommendations import recommended_courses
from dropout_pipeline_tests.conftest import TODAY, database_url_for
from dropout_pipeline_tests.test_web_pages import log_in
from dropout_pipeline_tests.web_support import OTHER_ORG_COURSE, RUNNING, running_app

ENGINES = ["sqlite", "postgresql"]  # the engines the web app runs on
FETCHED = datetime(2026, 9, 23, 1, 0)
EARLIER = "course-v1:UEL+PY101+2025_S2"
CURRENT = "course-v1:UEL+PY101+2026_S2"
FRESH = "course-v1:UEL+EC101+2026_S2"  # no earlier run: compared with its own classmates
AT_RISK = 1
SEMESTER_DAY = date(2026, 9, 23)  # day 17 of CURRENT: course week 3


def course(course_id: str, start: date, weeks: int, org: str = "UEL", name: str = "Python Programming") -> dict:
    begins = datetime.combine(start, datetime.min.time())
    return {"course_id": course_id, "display_name": name, "org": org, "start": begins,
            "end": begins + timedelta(days=7 * weeks - 1, hours=23), "enrollment_count": None, "discovered_at": FETCHED}


def enrolment(course_id: str, user_id: int) -> dict:
    return {"user_id": user_id, "course_id": course_id, "enrollment_id": user_id * 100 + len(course_id), "is_active": True, "fetched_at": FETCHED}


def progress(course_id: str, user_id: int, blocks: int) -> dict:
    return {"user_id": user_id, "course_id": course_id, "total_blocks": 150, "completed_blocks": blocks, "progress_percent": blocks / 1.5,
            "completion_rate": blocks / 150, "fetched_at": FETCHED}


def grade(course_id: str, user_id: int, percent: float) -> dict:
    return {"user_id": user_id, "course_id": course_id, "percent_grade": percent, "is_passed": False, "fetched_at": FETCHED}


def quiz(course_id: str, user_id: int, content_id: int, title: str, finished: bool = True) -> dict:
    return {"user_id": user_id, "course_id": course_id, "content_id": content_id, "content_title": title, "score": 8, "max_score": 10,
            "percentage": 80, "attempts": 1, "finished_at": FETCHED - timedelta(days=2) if finished else None, "fetched_at": FETCHED}


def video(course_id: str, user_id: int, content_id: int, title: str, status: str = "completed") -> dict:
    return {"user_id": user_id, "course_id": course_id, "content_id": content_id, "content_title": title, "progress_percent": 100,
            "current_time": 600, "duration": 600, "status": status, "last_watched_at": FETCHED - timedelta(days=1), "fetched_at": FETCHED}


def frozen(course_id: str, user_id: int, week: int, day: int, passed: bool, blocks: int, quizzes: int, videos: int) -> dict:
    snapshot = date(2025, 9, 1) + timedelta(days=7 * (week - 1) + day - 1)
    return {"user_id": user_id, "course_id": course_id, "snapshot_date": snapshot, "snapshot_week": week, "course_day": day,
            "semester": "2025_S2", "is_passed": passed, "is_dropout": False, "final_grade": 0.8 if passed else 0.2, "created_at": FETCHED,
            "completed_blocks": blocks, "h5p_completed_contents": quizzes, "video_completed_videos": videos}


def insert(engine: sa.Engine, rows: dict[sa.Table, list[dict]]) -> None:
    with engine.begin() as connection:
        for table, records in rows.items():
            bulk_insert(connection, table, records)


@pytest.fixture(params=ENGINES)
def database(request, tmp_path) -> Iterator[str]:
    yield from database_url_for(request.param, tmp_path)


@pytest.fixture
def runs(database) -> sa.Engine:
    """PY101's finished run of 2025 (6 passers, 4 others, frozen) and its run now, where learner 1
    has done unit 1 and Lecture 1.1 only; classmates have done units 1-4, Quiz 1.1, 1.2, 2.1 and
    Lectures 1.1, 1.2.

    At the end of week 3 the earlier passers had done 3 units, 2 quizzes, 1 video (on day 1 of
    that week only 2 units); the others 1 unit and 1 video; in week 4 everyone did more (later
    in the course: it must not count). So passers-minus-others is 1 for units 2 and 3 and the
    first two quizzes (Quiz 1.1, 1.2), 0 for unit 1 and the first lecture (the learner did them
    anyway), and nobody had done unit 4, Quiz 2.1 or Lecture 1.2 by week 3."""
    engine = engine_for(database)
    upgrade_schema(engine)
    history = []
    for user_id in range(101, 111):
        passed = user_id <= 106
        history += [
            frozen(EARLIER, user_id, 3, 1, passed, 2 if passed else 1, 1 if passed else 0, 1),
            frozen(EARLIER, user_id, 3, 7, passed, 3 if passed else 1, 2 if passed else 0, 1),
            frozen(EARLIER, user_id, 4, 7, passed, 4 if passed else 2, 3 if passed else 1, 2),
        ]
    insert(engine, {
        schema.courses: [course(EARLIER, date(2025, 9, 1), 15), course(CURRENT, date(2026, 9, 7), 15)],
        schema.enrollments: [enrolment(CURRENT, u) for u in (1, 2, 3)] + [enrolment(EARLIER, u) for u in range(101, 111)],
        schema.training_data: history,
        schema.mooc_progress: [progress(CURRENT, 1, 1), progress(CURRENT, 2, 4), progress(CURRENT, 3, 2)],
        schema.mooc_grades: [grade(CURRENT, 1, 0.01), grade(CURRENT, 2, 0.2), grade(CURRENT, 3, 0.1)],
        schema.h5p_scores: [quiz(CURRENT, 2, 811, "Quiz 1.1"), quiz(CURRENT, 2, 812, "Quiz 1.2"), quiz(CURRENT, 2, 813, "Quiz 2.1"),
                            quiz(CURRENT, 3, 811, "Quiz 1.1"), quiz(CURRENT, 1, 813, "Quiz 2.1", finished=False)],
        schema.video_progress: [video(CURRENT, 1, 851, "Lecture 1.1"), video(CURRENT, 2, 851, "Lecture 1.1"), video(CURRENT, 2, 852, "Lecture 1.2")],
    })
    return engine


def steps_of(engine: sa.Engine, course_id: str, user_id: int, today: date = SEMESTER_DAY) -> dict | None:
    with engine.connect() as connection:
        found = next_steps.next_steps(connection, next_steps_course(connection, course_id), user_id, today)
    return found


def next_steps_course(connection: sa.Connection, course_id: str) -> dict:
    return dict(connection.execute(sa.select(schema.courses).where(schema.courses.c.course_id == course_id)).mappings().one())


def test_next_steps_are_what_earlier_passers_had_done_by_this_week_and_the_learner_has_not(runs):
    found = steps_of(runs, CURRENT, AT_RISK)
    assert found["week"] == 3
    assert found["reference"] == {
        "source": "earlier_runs", "course_ids": [EARLIER], "week": 3, "passed": 6, "others": 4,
        "description": found["reference"]["description"],
    } and EARLIER in found["reference"]["description"]
    assert [(item["kind"], item["title"]) for item in found["items"]] == [("h5p", "Quiz 1.1"), ("h5p", "Quiz 1.2"), ("unit", "Unit 2"), ("unit", "Unit 3")]
    assert {(item["share_of_passed"], item["share_of_others"], item["lift"]) for item in found["items"]} == {(1.0, 0.0, 1.0)}
    assert [item["content_id"] for item in found["items"]] == [811, 812, None, None]


def test_next_steps_leave_out_what_the_learner_did_and_a_classmate_who_did_everything_gets_none(runs):
    classmate = steps_of(runs, CURRENT, 2)  # 4 units, every quiz and lecture
    assert classmate["items"] == [] and classmate["note"] == "the learner has done everything most passers had done by this week"
    partly = steps_of(runs, CURRENT, 3)  # units 1-2, Quiz 1.1
    assert [(item["kind"], item["title"]) for item in partly["items"]] == [("h5p", "Quiz 1.2"), ("unit", "Unit 3")]


def test_next_steps_in_week_one_compare_with_week_one_of_the_earlier_run(runs):
    """Earlier learners have no frozen row before week 3 here: week 1 finds no passers, so this
    run's own classmates stand in, and are too few."""
    found = steps_of(runs, CURRENT, AT_RISK, date(2026, 9, 8))
    assert found["week"] == 1 and found["reference"]["source"] == "current_classmates" and found["items"] == []
    assert "fewer than 5" in found["note"]
    assert steps_of(runs, CURRENT, AT_RISK, date(2026, 9, 1))["note"].startswith("the course has not started")
    assert steps_of(runs, CURRENT, 424242) is None


def test_without_an_earlier_run_the_top_third_by_grade_stands_in_for_those_who_pass(runs):
    """Learner 1 (grade 0, did nothing) and 16 classmates with grades 1% to 16%: the class's top
    third by grade (above the 2/3 quantile, 10.67%) is 11-16%, who all finished Quiz 1.1 and
    nobody else did; every classmate watched Lecture 1.1: no lift once the learner, who did
    not, is left out of the others (6 against 10, not 11)."""
    classmates = range(20, 36)
    insert(runs, {
        schema.courses: [course(FRESH, date(2026, 9, 7), 15, name="Microeconomics")],
        schema.enrollments: [enrolment(FRESH, u) for u in (AT_RISK, *classmates)],
        schema.mooc_grades: [grade(FRESH, AT_RISK, 0.0)] + [grade(FRESH, u, (u - 19) / 100) for u in classmates],
        schema.mooc_progress: [progress(FRESH, u, 0) for u in (AT_RISK, *classmates)],
        schema.h5p_scores: [quiz(FRESH, u, 911, "Quiz 1.1") for u in classmates if u >= 30],
        schema.video_progress: [video(FRESH, u, 951, "Lecture 1.1") for u in classmates],
    })
    found = steps_of(runs, FRESH, AT_RISK)
    assert found["reference"]["source"] == "current_classmates" and (found["reference"]["passed"], found["reference"]["others"]) == (6, 10)
    assert [(item["title"], item["share_of_passed"], item["share_of_others"]) for item in found["items"]] == [("Quiz 1.1", 1.0, 0.0)]


# --- Across courses ------------------------------------------------------------------------


S1, S2 = date(2025, 9, 1), date(2026, 2, 2)
PY101_OLD, ML301 = "course-v1:UEL+PY101+2025_S2", "course-v1:DHQG+ML301+2025_S2"
EC101, DS201, PY101_NEW = "course-v1:UEL+EC101+2026_S1", "course-v1:DHQG+DS201+2026_S1", "course-v1:UEL+PY101+2026_S1"


@pytest.fixture
def semesters(database) -> sa.Engine:
    """Two semesters. 2025_S2: PY101 (UEL, learners 1-6, 1-3 passed), ML301 (DHQG, 7-9). 2026_S1:
    EC101 (UEL: 1, 2, 10), DS201 (DHQG: 3, 11-13), and PY101's new run (14)."""
    engine = engine_for(database)
    upgrade_schema(engine)
    enrolled = {PY101_OLD: range(1, 7), ML301: (7, 8, 9), EC101: (1, 2, 10), DS201: (3, 11, 12, 13), PY101_NEW: (14,)}
    insert(engine, {
        schema.courses: [course(PY101_OLD, S1, 15), course(ML301, S1, 15, "DHQG", "Machine Learning"), course(EC101, S2, 15, name="Microeconomics"),
                         course(DS201, S2, 15, "DHQG", "Data Science Foundations"), course(PY101_NEW, S2, 15)],
        schema.enrollments: [enrolment(course_id, u) for course_id, users in enrolled.items() for u in users],
        schema.training_data: [frozen(PY101_OLD, u, 15, 7, u <= 3, 150, 30, 30) for u in range(1, 7)],
    })
    return engine


def test_recommendations_are_open_courses_of_subjects_not_taken(semesters):
    """On 2026-03-01 the 2025 runs are over and the 2026 ones running. Learner 1 took PY101 in
    2025 and is in EC101 now: PY101's 2026 run is the same subject, so only DS201 is left."""
    with semesters.connect() as connection:
        recommender = course_recommender.fitted_on_everything(connection)
    today = date(2026, 3, 1)
    assert [r["course_id"] for r in course_recommender.recommend(recommender, 1, today)] == [DS201]
    newcomer = course_recommender.recommend(recommender, 999, today)  # no history: popularity (PY101's runs 7, DS201 4, EC101 3)
    assert [r["course_id"] for r in newcomer] == [PY101_NEW, DS201, EC101] and newcomer[0]["parts"]["collaborative"] == 0
    assert course_recommender.recommend(recommender, 1, date(2026, 8, 1)) == []  # everything has ended
    before = course_recommender.recommend(recommender, 999, date(2025, 8, 1))  # upcoming courses are open: each subject's first run
    assert {r["course_id"] for r in before} == {PY101_OLD, ML301, EC101, DS201}


def test_a_course_the_recommender_has_not_seen_the_learner_enrol_in_is_never_recommended(semesters):
    """Fitted before learner 999 enrolled anywhere: the database's enrolments of the moment
    (EC101 now) rule its subject out, and PY101's runs too once any of them is named."""
    with semesters.connect() as connection:
        recommender = course_recommender.fitted_on_everything(connection)
    today = date(2026, 3, 1)
    assert EC101 in [r["course_id"] for r in course_recommender.recommend(recommender, 999, today)]
    fresh = [r["course_id"] for r in course_recommender.recommend(recommender, 999, today, enrolled_now=[EC101, PY101_OLD])]
    assert fresh == [DS201]


def test_a_course_is_open_for_enrolment_until_its_end_day_and_a_self_paced_one_always():
    py101 = course(PY101_NEW, S2, 15)  # 2026-02-02 to 2026-05-17
    assert course_recommender.is_open_for_enrolment(py101, date(2026, 1, 1))  # upcoming
    assert course_recommender.is_open_for_enrolment(py101, date(2026, 5, 17))  # its last day
    assert not course_recommender.is_open_for_enrolment(py101, date(2026, 5, 18))
    assert course_recommender.is_open_for_enrolment({**py101, "end": pd.NaT}, date(2030, 1, 1))


def test_the_time_split_evaluation_matches_the_hand_computed_ndcg(semesters):
    """The split at 2026_S1: learners 1, 2 (PY101, then EC101) and 3 (PY101, then DS201); learner
    14 had no earlier course. Open: EC101 and DS201 (PY101 taken). Neither has an earlier
    enrolment, so popularity ties and falls back to course key order (DS201 first); the
    hybrid puts EC101 first for all three (same organisation as PY101, and its text shares
    UEL). NDCG@10 with the hit at rank 2 is 1/log2(3)."""
    report = course_recommender.recommender_holdout_report(semesters)
    second = 1 / np.log2(3)
    assert report["learners_evaluated"] == 3 and report["splits"][0]["semester"] == "2026_S1" and report["splits"][0]["learners_evaluated"] == 3
    assert report["hybrid"]["ndcg_at_10"] == pytest.approx((1 + 1 + second) / 3, abs=1e-4)
    assert report["popularity"]["ndcg_at_10"] == pytest.approx((second + second + 1) / 3, abs=1e-4)
    assert report["hybrid"]["recall_at_10"] == report["popularity"]["recall_at_10"] == 1.0
    assert report["enough_learners"] is False and report["verdict"].startswith("3 learners evaluated (3 of 14 learners") and "recall@10 is 1 by construction" in report["verdict"]
    assert report["learners_with_more_than_one_course"] == 3


def test_the_time_split_learns_no_outcome_of_a_course_not_over_by_its_cutoff(semesters):
    """PY101's 2025 run ends on 2025-12-14: at a cutoff before that its learners' outcomes
    were not known yet, after it they were; ML301's are unknown either way (none frozen)."""
    with semesters.connect() as connection:
        catalogue = course_recommender.read_catalogue(connection)
    py101 = catalogue.enrolments["course_id"] == PY101_OLD
    assert catalogue.enrolments.loc[py101, "passed"].notna().all()
    during = course_recommender.outcomes_known_at(catalogue.enrolments, catalogue.courses, pd.Timestamp(2025, 12, 1))
    after = course_recommender.outcomes_known_at(catalogue.enrolments, catalogue.courses, pd.Timestamp(2026, 2, 2))
    assert during.loc[py101, "passed"].isna().all()
    assert after.loc[py101, "passed"].tolist() == catalogue.enrolments.loc[py101, "passed"].tolist()
    assert len(during) == len(after) == len(catalogue.enrolments)  # the enrolments stay: only what was unknown is unknown


def test_a_world_of_learners_who_take_one_course_each_is_not_evaluated_and_says_so(sqlite_url):
    engine = engine_for(sqlite_url)
    upgrade_schema(engine)
    insert(engine, {
        schema.courses: [course(PY101_OLD, S1, 15), course(EC101, S2, 15, name="Microeconomics")],
        schema.enrollments: [enrolment(PY101_OLD, 1), enrolment(EC101, 2)],
    })
    report = course_recommender.recommender_holdout_report(engine)
    assert report["learners_evaluated"] == 0 and report["hybrid"] == {"ndcg_at_10": None, "recall_at_10": None}
    assert report["verdict"].startswith("not evaluated") and "no figure is given" in report["verdict"]


def test_no_learner_of_the_simulated_world_is_recommended_a_course_taken_or_closed(web_world):
    engine = engine_for(web_world["url"])
    with engine.connect() as connection:
        recommender = course_recommender.fitted_on_everything(connection)
    courses = recommender.catalogue.courses
    ended = {row.course_id for row in courses.itertuples() if row.end.date() < TODAY}
    assert ended and len(ended) < len(courses)
    for user_id, history in recommender.catalogue.enrolments.groupby("user_id"):
        recommended = course_recommender.recommend(recommender, user_id, TODAY, limit=20)
        assert not {r["course_id"] for r in recommended} & ended
        assert not {course_subject(r["course_id"]) for r in recommended} & set(history["subject"])


def test_a_teacher_is_recommended_only_courses_in_the_tokens_scope(semesters):
    teacher = Principal(token_id=1, name="t", role="teacher", courses=frozenset(), orgs=frozenset({"UEL"}))
    with semesters.connect() as connection:
        found = recommended_courses(connection, teacher, {"course_id": ML301}, 7, date(2026, 3, 1), 10)
    assert {r["course_id"] for r in found["recommendations"]} == {EC101, PY101_NEW}  # not DHQG's DS201


# --- Over HTTP -----------------------------------------------------------------------------------


RAW_TABLES = (schema.mooc_progress, schema.mooc_grades, schema.h5p_scores, schema.video_progress, schema.training_data)


@pytest.fixture(scope="module")
def served(web_world, tmp_path_factory):
    """The web world served, with the raw tables and training rows the recommenders read."""
    with running_app(web_world, "sqlite", tmp_path_factory.mktemp("recommendations")) as app:
        with engine_for(web_world["url"]).connect() as reading, engine_for(app["url"]).begin() as writing:
            for table in RAW_TABLES:
                bulk_insert(writing, table, [dict(row) for row in reading.execute(sa.select(table)).mappings()])
        yield app


def weakest_learner(app) -> int:
    g = schema.mooc_grades
    with engine_for(app["url"]).connect() as connection:
        return connection.execute(sa.select(g.c.user_id).where(g.c.course_id == RUNNING).order_by(g.c.percent_grade, g.c.user_id)).scalars().first()


def test_the_api_answers_next_steps_and_course_recommendations_for_a_learner(served):
    user_id = weakest_learner(served)
    client = served["clients"]["teacher"]
    for spelled in (RUNNING, quote(RUNNING, safe="")):
        steps = client.get(f"/api/v1/courses/{spelled}/students/{user_id}/next-steps")
        assert steps.status_code == 200, steps.text
    body = steps.json()
    with engine_for(served["url"]).connect() as connection:
        course = next_steps_course(connection, RUNNING)
        assert body == _jsonable(next_steps.next_steps(connection, course, user_id, TODAY))
        done = {row.content_id for row in connection.execute(
            sa.select(schema.h5p_scores.c.content_id).where(schema.h5p_scores.c.course_id == RUNNING, schema.h5p_scores.c.user_id == user_id,
                                                           schema.h5p_scores.c.finished_at.is_not(None)))}
    assert body["reference"]["source"] == "current_classmates" and body["items"]  # the small world has no earlier AC102 run
    assert all(item["share_of_passed"] >= 0.5 and item["lift"] > 0 for item in body["items"])
    assert not {item["content_id"] for item in body["items"] if item["kind"] == "h5p"} & done

    courses = client.get(f"/api/v1/courses/{RUNNING}/students/{user_id}/course-recommendations").json()
    assert courses["courses_taken"] >= 1 and all(r["state"] in ("upcoming", "running") for r in courses["recommendations"])
    assert all(r["org"] == "UEL" for r in courses["recommendations"])  # the teacher's scope
    assert set(courses["weights"]) == set(course_recommender.WEIGHTS)


def _jsonable(found: dict) -> dict:
    return httpx.Response(200, json=found).json()


@pytest.mark.parametrize("suffix", ["next-steps", "course-recommendations"])
def test_the_recommendations_follow_the_apis_scope_rules(served, suffix):
    user_id = weakest_learner(served)
    url = f"/api/v1/courses/{quote(RUNNING, safe='')}/students/{user_id}/{suffix}"
    assert httpx.get(served["base"] + url).status_code == 401
    assert httpx.get(served["base"] + url, headers={"Authorization": "Bearer dpt_not-a-token"}).status_code == 401
    refused = served["clients"]["other_teacher"].get(url)
    assert refused.status_code == 403 and refused.json()["errors"][0]["field"] == "course_id"
    assert served["clients"]["course_teacher"].get(url).status_code == 200
    unknown = served["clients"]["admin"].get(f"/api/v1/courses/{quote(RUNNING, safe='')}/students/424242/{suffix}")
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "user_id"
    no_course = served["clients"]["admin"].get(f"/api/v1/courses/course-v1:NOPE+X+1/students/{user_id}/{suffix}")
    assert no_course.status_code == 404 and no_course.json()["errors"][0]["field"] == "course_id"
    assert served["clients"]["admin"].get(f"/api/v1/courses/{quote(OTHER_ORG_COURSE, safe='')}/students/{user_id}/{suffix}").status_code == 404


def test_the_learner_page_shows_what_to_do_next(served):
    user_id = weakest_learner(served)
    page_path = f"/courses/{quote(RUNNING, safe='')}/students/{user_id}"
    _answer, cookies = log_in(served["base"], served["tokens"]["teacher"], page_path)
    page = httpx.get(served["base"] + page_path, cookies=cookies)
    assert page.status_code == 200 and "What to do next" in page.text
    first = served["clients"]["teacher"].get(f"/api/v1/courses/{quote(RUNNING, safe='')}/students/{user_id}/next-steps").json()["items"][0]
    assert first["title"] in page.text and "Next courses" in page.text
