"""The planner, on a clock that moves: one decision for every day of a course's life."""

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.lifecycle.plan import CourseFacts, CourseState, Outcome, Phase, TrainingFacts, Trigger, plan_day, run_key

# Starts Monday 2026-09-07 00:00 and ends Sunday 2026-10-04 23:59:59 at UTC+7 (stored as naive UTC).
CALENDAR = CourseCalendar("course-v1:T+LIFE+2026_S2", datetime(2026, 9, 6, 17), datetime(2026, 10, 4, 16, 59, 59))
TRAINED = TrainingFacts(frozen_rows=500, learned_rows=500)
NIGHT, MIDDAY = time(0, 30), time(12)


def course(**facts) -> CourseFacts:
    values = dict(calendar=CALENDAR, enrollment_count=40, has_partition=True, stored=True, model="fail_risk_model v1")
    values.update(facts)
    return CourseFacts(**values)


def live_one_day(facts: CourseFacts, day: date, training: TrainingFacts = TRAINED):
    """The day's plan, then what the day's runs leave behind (all succeed)."""
    plan = plan_day([facts], training, day, {})
    for run in plan.runs:
        if run.phase is Phase.REFRESH:
            facts = replace(facts, last_predicted=day)
        if run.phase is Phase.FREEZE:
            facts = replace(facts, frozen_rows=300)
    return plan, facts


def test_a_course_waits_runs_daily_freezes_once_and_rests_as_the_days_go_by():
    facts, actions = course(), {}
    for offset in range(-3, 33):
        day = date(2026, 9, 7) + timedelta(days=offset)
        plan, facts = live_one_day(facts, day)
        step = plan.courses[0]
        actions[day] = (step.state, step.action)
    assert actions[date(2026, 9, 6)] == (CourseState.UPCOMING, "wait")
    assert actions[date(2026, 9, 7)] == (CourseState.RUNNING, "refresh")  # picked up on its start day
    assert all(actions[date(2026, 9, 7) + timedelta(days=n)] == (CourseState.RUNNING, "refresh") for n in range(28))
    assert actions[date(2026, 10, 4)] == (CourseState.RUNNING, "refresh")  # its last day is still a day of teaching
    assert actions[date(2026, 10, 5)] == (CourseState.FINISHED, "freeze")  # within a day of its end
    assert all(actions[date(2026, 10, 5) + timedelta(days=n)] == (CourseState.FINISHED, "none") for n in range(1, 4))


def test_refreshes_go_with_the_sensor_from_six_so_they_score_with_the_nights_model():
    first = plan_day([course()], TRAINED, date(2026, 9, 7), {})
    again = plan_day([course(last_predicted=date(2026, 9, 7))], TRAINED, date(2026, 9, 8), {})
    for plan in (first, again):
        assert [r.phase for r in plan.runs_for(Trigger.SENSOR, time(6))] == [Phase.REFRESH]
        assert plan.runs_for(Trigger.SENSOR, time(5, 59)) == plan.runs_for(Trigger.NIGHTLY, time(2)) == []
    assert "first predictions" in first.runs[0].reason and "first" not in again.runs[0].reason


def test_no_step_is_ever_launched_by_both_triggers():
    """The sensor and the 02:00 schedule evaluate concurrently in the daemon: were a step
    in both shares, it could be launched twice and two runs would write the same rows."""
    plans = [
        plan_day([course(has_partition=False), course(calendar=replace(CALENDAR, course_id="course-v1:T+OLD+2026_S1"))], grown, day, {})
        for grown in (TRAINED, TrainingFacts(frozen_rows=900, learned_rows=500), TrainingFacts(frozen_rows=900, learned_rows=None))
        for day in (date(2026, 9, 9), date(2026, 10, 6))
    ]
    assert {r.phase for plan in plans for r in plan.runs} == set(Phase)
    for plan in plans:
        for at in (NIGHT, time(2), time(6), MIDDAY):
            by_sensor = {r.run_key for r in plan.runs_for(Trigger.SENSOR, at)}
            assert not by_sensor & {r.run_key for r in plan.runs_for(Trigger.NIGHTLY, at)}
        assert {r.run_key for r in plan.runs_for(Trigger.SENSOR, MIDDAY) + plan.runs_for(Trigger.NIGHTLY, time(2))} == {r.run_key for r in plan.runs}


def test_course_model_mapping_turns_predictions_off_or_weekly():
    tuesday, monday = date(2026, 9, 15), date(2026, 9, 21)
    assert plan_day([course(auto_predict=False)], TRAINED, tuesday, {}).runs == ()
    weekly = course(frequency="weekly", last_predicted=date(2026, 9, 14))
    assert plan_day([weekly], TRAINED, tuesday, {}).runs == ()
    assert [r.phase for r in plan_day([weekly], TRAINED, monday, {}).runs] == [Phase.REFRESH]
    missed_monday = course(frequency="weekly", last_predicted=date(2026, 9, 7))
    assert [r.phase for r in plan_day([missed_monday], TRAINED, tuesday, {}).runs] == [Phase.REFRESH]


def test_a_running_course_without_any_model_waits_for_the_first_training():
    step = plan_day([course(model=None)], TRAINED, date(2026, 9, 9), {}).courses[0]
    assert step.action == "wait" and "first model" in step.reason


def test_a_step_tried_today_is_not_planned_again_until_tomorrow():
    day = date(2026, 10, 6)
    key = run_key(Phase.FREEZE, day, CALENDAR.course_id)
    failed = plan_day([course()], TRAINED, day, {key: Outcome.FAILED})
    running = plan_day([course()], TRAINED, day, {key: Outcome.IN_FLIGHT})
    tomorrow = plan_day([course()], TRAINED, day + timedelta(days=1), {key: Outcome.FAILED})
    assert failed.runs == () and "failed today: the daemon tries again tomorrow" in failed.courses[0].reason
    assert running.runs == () and running.courses[0].action == "freeze"
    assert [r.phase for r in tomorrow.runs] == [Phase.FREEZE]


def test_retraining_is_due_only_for_rows_no_model_learned_from():
    day = date(2026, 10, 6)
    grown = TrainingFacts(frozen_rows=800, learned_rows=500)
    assert plan_day([], TRAINED, day, {}).runs == ()
    assert "no training rows frozen since the models were last trained (on 500 rows)" in plan_day([], TRAINED, day, {}).retrain_reason
    assert [r.phase for r in plan_day([], grown, day, {}).runs] == [Phase.RETRAIN]
    assert "300 training rows frozen since" in plan_day([], grown, day, {}).retrain_reason
    assert plan_day([], grown, day, {}).runs_for(Trigger.SENSOR, MIDDAY) == []  # a model exists: the retrain waits for 02:00
    assert plan_day([], grown, day, {}).runs_for(Trigger.NIGHTLY, time(2)) != []
    assert plan_day([], grown, day, {run_key(Phase.RETRAIN, day): Outcome.SUCCEEDED}).runs == ()
    assert "no finished course has been frozen" in plan_day([], TrainingFacts(), day, {}).retrain_reason


def test_a_new_installation_trains_its_first_models_once_nothing_is_left_to_freeze():
    day = date(2026, 10, 6)
    untrained = TrainingFacts(frozen_rows=500, learned_rows=None)
    freezing = plan_day([course()], untrained, day, {})  # the course finished yesterday and is not frozen yet
    assert [(r.phase, r.first_model) for r in freezing.runs] == [(Phase.FREEZE, False), (Phase.RETRAIN, False)]
    frozen = plan_day([course(frozen_rows=300)], untrained, day, {})
    assert [(r.phase, r.first_model) for r in frozen.runs_for(Trigger.SENSOR, NIGHT)] == [(Phase.RETRAIN, True)]
    assert "a target has no model yet: 500 training rows" in frozen.retrain_reason


def test_new_and_changed_courses_are_registered_upcoming_ones_included():
    upcoming = course(calendar=CourseCalendar("course-v1:T+NEXT+2027_S1", datetime(2027, 2, 1, 17), None), has_partition=False, stored=False)
    moved = course(stored=False)
    plan = plan_day([upcoming, moved], TRAINED, date(2026, 9, 8), {})
    register = plan.in_phase(Phase.REGISTER)
    assert len(register) == 1 and "2 courses new or changed" in register[0].reason
    assert plan.new_partitions == ("course-v1:T+NEXT+2027_S1",)
    assert [s.action for s in plan.courses if s.course_id == upcoming.course_id] == ["wait"]
