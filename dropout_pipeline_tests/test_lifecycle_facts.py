"""What the planner reads from a real database (lifecycle.facts), on SQLite and PostgreSQL."""

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from dropout_pipeline.lifecycle.facts import course_facts, training_facts
from dropout_pipeline.lifecycle.facts import CatalogueEntry
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.lifecycle.plan import FROZEN, Phase, plan_day
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for, upgrade_schema
from dropout_pipeline.storage.lifecycle_tables import record_freeze, record_training_attempt
from dropout_pipeline_tests.conftest import database_url_for

NOW = datetime(2026, 11, 20, 19)
DAY = date(2026, 11, 21)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    for url in database_url_for(request.param, tmp_path):
        engine = engine_for(url)
        upgrade_schema(engine)
        yield engine


def frozen_rows(connection, course_id: str, count: int, learnable: bool, first_user: int = 1) -> list[int]:
    rows = [
        {"user_id": first_user + n, "course_id": course_id, "snapshot_date": date(2026, 9, 8), "snapshot_week": 1, "semester": "2026_S1",
         "is_passed": n % 2 == 0, "is_dropout": False, "final_grade": 50.0, "created_at": NOW, "course_day": 2 if learnable else None}
        for n in range(count)
    ]
    connection.execute(schema.training_data.insert(), rows)
    table = schema.training_data
    return list(connection.execute(sa.select(table.c.id).where(table.c.course_id == course_id)).scalars())


def register(connection, model_name: str, version: int, training_ids: list[int], trained_at: datetime = NOW) -> None:
    connection.execute(schema.model_registry.insert().values(
        model_name=model_name, model_version=version, target=model_name.split("_")[0], model_path="/nowhere", features=[],
        model_type="catboost", domain="all", trained_at=trained_at, training_rows=len(training_ids), holdout_courses=[], metrics={},
        is_active=True, is_default=True,
    ))
    connection.execute(schema.training_data_usage.insert(), [
        {"training_data_id": i, "model_name": model_name, "model_version": version, "used_at": trained_at} for i in training_ids
    ])


def test_retraining_resumes_after_an_upgrade_that_made_old_rows_unlearnable(engine):
    """Models registered before the day-1/4/7 snapshots counted 10 rows that are no longer
    learnable; 4 learnable rows frozen since were compared with those 10, and the planner
    said "no training rows frozen since" until a semester's worth passed them."""
    with engine.begin() as connection:
        old = frozen_rows(connection, "course-v1:OLD+A+2026_S1", 10, learnable=False)
        for name in ("fail_risk_model", "dropout_risk_model"):
            register(connection, name, 1, old)
        frozen_rows(connection, "course-v1:NEW+B+2026_S2", 4, learnable=True, first_user=100)
    with engine.connect() as connection:
        facts = training_facts(connection)
    assert facts.frozen_rows == 4 and [t.unseen_rows for t in facts.targets] == [4, 4]
    plan = plan_day([], facts, DAY, {})
    assert [r.phase for r in plan.in_phase(Phase.RETRAIN)] == [Phase.RETRAIN]
    assert "4 training rows frozen since fail_risk_model v1" in plan.retrain_reason


def test_a_target_that_could_not_train_is_tried_again_only_on_new_rows(engine):
    with engine.begin() as connection:
        rows = frozen_rows(connection, "course-v1:A+A+2026_S1", 6, learnable=True)
        register(connection, "dropout_risk_model", 1, rows)
        record_training_attempt(connection, "fail_risk_model", 6, "every held-out learner passed", NOW)
    with engine.connect() as connection:
        stuck = training_facts(connection)
    assert [(t.model_name, t.unseen_rows, t.cannot_train) for t in stuck.targets] == [
        ("fail_risk_model", 0, "every held-out learner passed"), ("dropout_risk_model", 0, None),
    ]
    assert plan_day([], stuck, DAY, {}).runs == ()
    with engine.begin() as connection:
        frozen_rows(connection, "course-v1:B+B+2026_S2", 3, learnable=True, first_user=100)
    with engine.connect() as connection:
        grown = training_facts(connection)
    assert [t.unseen_rows for t in grown.targets] == [3, 3]
    assert plan_day([], grown, DAY, {}).in_phase(Phase.RETRAIN)


def test_each_course_carries_its_latest_freeze_and_stored_courses_the_catalogue_dropped(engine):
    calendar = CourseCalendar("course-v1:A+A+2026_S1", datetime(2026, 9, 6, 17), datetime(2026, 10, 4, 16, 59, 59))
    gone = CourseCalendar("course-v1:GONE+A+2026_S1", datetime(2026, 9, 6, 17), datetime(2026, 10, 4, 16, 59, 59))
    with engine.begin() as connection:
        for c in (calendar, gone):
            connection.execute(schema.courses.insert().values(course_id=c.course_id, display_name="x", org="A", start=c.start, end=c.end,
                                                              enrollment_count=3, discovered_at=NOW))
        record_freeze(connection, calendar.course_id, calendar.end - timedelta(days=7), FROZEN, 30, None, NOW - timedelta(days=10))
        record_freeze(connection, calendar.course_id, calendar.end, FROZEN, 40, None, NOW)
    with engine.connect() as connection:
        facts = {f.course_id: f for f in course_facts(connection, [CatalogueEntry(calendar, 3)], set(), DAY)}
    assert facts[calendar.course_id].last_freeze.training_rows == 40 and facts[calendar.course_id].listed
    assert facts[gone.course_id].last_freeze is None and not facts[gone.course_id].listed


def test_status_names_the_state_of_each_course_that_used_to_stay_in_the_plan(engine, instance):
    """`status` showed "freeze" forever for these; each now ends in a state it names."""
    from dropout_pipeline.lifecycle.facts import catalogue_from_database
    from dropout_pipeline.lifecycle.plan import NOTHING_TO_LEARN
    from dropout_pipeline.lifecycle.runs import plan_now
    from dropout_pipeline.lifecycle.status import render_status, status_rows

    ended = datetime(2026, 10, 4, 16, 59, 59)
    courses = {
        "course-v1:EMPTY+A+2026_S2": (datetime(2026, 9, 6, 17), ended, None, (NOTHING_TO_LEARN, "nobody enrolled")),
        "course-v1:ONEDAY+A+2026_S2": (datetime(2026, 10, 3, 17), ended, 20, (NOTHING_TO_LEARN, "no snapshot before its end: the course is shorter than a week")),
        "course-v1:FROZEN+A+2026_S2": (datetime(2026, 9, 6, 17), ended, 20, (FROZEN, None)),
        "course-v1:MOVED+A+2026_S2": (datetime(2026, 9, 6, 17), ended + timedelta(days=14), 20, (FROZEN, None)),
        "course-v1:GRACE+A+2026_S2": (datetime(2026, 9, 6, 17), datetime(2026, 11, 18, 16, 59, 59), 20, None),
    }
    with engine.begin() as connection:
        for course_id, (start, end, count, freeze) in courses.items():
            connection.execute(schema.courses.insert().values(course_id=course_id, display_name="x", org="A", start=start, end=end,
                                                              enrollment_count=count, discovered_at=NOW))
            if freeze:
                record_freeze(connection, course_id, ended, freeze[0], 0 if freeze[0] == NOTHING_TO_LEARN else 40, freeze[1], NOW)
    with engine.connect() as connection:
        plan = plan_now(instance, engine, catalogue_from_database(connection), DAY, grace_days=7)
        lines = {line.split()[0]: line for line in render_status(plan, status_rows(connection, plan), "Asia/Ho_Chi_Minh").splitlines()[3:]}
    assert lines["course-v1:EMPTY+A+2026_S2"].endswith("frozen with nothing to learn from: nobody enrolled")
    assert lines["course-v1:ONEDAY+A+2026_S2"].endswith("frozen with nothing to learn from: no snapshot before its end: the course is shorter than a week")
    assert lines["course-v1:FROZEN+A+2026_S2"].endswith("frozen: 40 training rows")
    assert lines["course-v1:MOVED+A+2026_S2"].endswith("freeze: its end moved from 2026-10-04 to 2026-10-18 after its freeze: frozen again from its new end")
    assert lines["course-v1:GRACE+A+2026_S2"].endswith("wait: finished on 2026-11-18: frozen on 2026-11-25, once late grades are in")
