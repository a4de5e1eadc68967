"""The planner, on a clock that moves: one decision for every day of a course's life."""

from dataclasses import replace
from datetime import date, datetime, time, timedelta

from dropout_pipeline.features.calendar import CourseCalendar, scored_day
from dropout_pipeline.lifecycle.plan import (
    FROZEN, NOTHING_TO_LEARN, CourseFacts, CourseState, FreezeFacts, Outcome, Phase, TargetFacts, TrainingFacts, Trigger, in_flight_key,
    plan_day, run_key,
)

# Starts Monday 2026-09-07 00:00 and ends Sunday 2026-10-04 23:59:59 at UTC+7 (stored as naive UTC).
CALENDAR = CourseCalendar("course-v1:T+LIFE+2026_S2", datetime(2026, 9, 6, 17), datetime(2026, 10, 4, 16, 59, 59))


def training(frozen_rows: int, unseen: int | None, cannot_train: str | None = None) -> TrainingFacts:
    """Both targets trained with `unseen` rows not seen since (None: neither has a model)."""
    targets = tuple(
        TargetFacts(name, None if unseen is None else f"{name} v1", frozen_rows if unseen is None else unseen)
        for name in ("fail_risk_model", "dropout_risk_model")
    )
    if cannot_train:
        targets = (TargetFacts("fail_risk_model", None, 0, cannot_train), targets[1])
    return TrainingFacts(frozen_rows, targets)


TRAINED = training(500, 0)
NIGHT, MIDDAY = time(0, 30), time(12)


def course(**facts) -> CourseFacts:
    values = dict(calendar=CALENDAR, enrollment_count=40, has_partition=True, stored=True, model="fail_risk_model v1")
    values.update(facts)
    return CourseFacts(**values)


def live_one_day(facts: CourseFacts, day: date, training: TrainingFacts = TRAINED, grace_days: int = 0):
    """The day's plan, then what the day's runs leave behind (all succeed)."""
    plan = plan_day([facts], training, day, {}, grace_days)
    for run in plan.runs:
        if run.phase is Phase.REFRESH:
            facts = replace(facts, last_predicted=scored_day(day))
        if run.phase is Phase.FREEZE:
            facts = replace(facts, frozen_rows=300, last_freeze=FreezeFacts(facts.calendar.end, FROZEN, 300))
    return plan, facts


def test_a_course_waits_runs_daily_freezes_once_and_rests_as_the_days_go_by():
    facts, actions = course(), {}
    for offset in range(-3, 33):
        day = date(2026, 9, 7) + timedelta(days=offset)
        plan, facts = live_one_day(facts, day)
        step = plan.courses[0]
        actions[day] = (step.state, step.action)
    assert actions[date(2026, 9, 6)] == (CourseState.UPCOMING, "wait")
    assert actions[date(2026, 9, 7)] == (CourseState.RUNNING, "wait")  # its first day has not ended: nothing to score yet
    assert all(actions[date(2026, 9, 8) + timedelta(days=n)] == (CourseState.RUNNING, "refresh") for n in range(27))
    assert actions[date(2026, 10, 4)] == (CourseState.RUNNING, "refresh")  # its last day is still a day of teaching
    assert actions[date(2026, 10, 5)] == (CourseState.FINISHED, "freeze")  # within a day of its end
    assert all(actions[date(2026, 10, 5) + timedelta(days=n)] == (CourseState.FINISHED, "none") for n in range(1, 4))


def test_refreshes_go_with_the_sensor_from_six_so_they_score_with_the_nights_model():
    first = plan_day([course()], TRAINED, date(2026, 9, 8), {})
    again = plan_day([course(last_predicted=date(2026, 9, 8))], TRAINED, date(2026, 9, 10), {})
    for plan in (first, again):
        assert [r.phase for r in plan.runs_for(Trigger.SENSOR, time(6))] == [Phase.REFRESH]
        assert plan.runs_for(Trigger.SENSOR, time(5, 59)) == plan.runs_for(Trigger.NIGHTLY, time(2)) == []
    assert "first predictions" in first.runs[0].reason and "first" not in again.runs[0].reason


def test_no_step_is_ever_launched_by_both_triggers():
    """The sensor and the 02:00 schedule evaluate concurrently in the daemon: were a step
    in both shares, it could be launched twice and two runs would write the same rows."""
    plans = [
        plan_day([course(has_partition=False), course(calendar=replace(CALENDAR, course_id="course-v1:T+OLD+2026_S1"))], grown, day, {})
        for grown in (TRAINED, training(900, 400), training(900, None))
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
    weekly = course(frequency="weekly", last_predicted=date(2026, 9, 13))  # scored on Monday 2026-09-14
    assert plan_day([weekly], TRAINED, tuesday, {}).runs == ()
    assert [r.phase for r in plan_day([weekly], TRAINED, monday, {}).runs] == [Phase.REFRESH]
    missed_monday = course(frequency="weekly", last_predicted=date(2026, 9, 6))
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
    grown = training(800, 300)
    assert plan_day([], TRAINED, day, {}).runs == ()
    assert "no training rows frozen since the models were last trained (500 learnable rows)" in plan_day([], TRAINED, day, {}).retrain_reason
    assert [r.phase for r in plan_day([], grown, day, {}).runs] == [Phase.RETRAIN]
    assert "300 training rows frozen since fail_risk_model v1" in plan_day([], grown, day, {}).retrain_reason
    assert plan_day([], grown, day, {}).runs_for(Trigger.SENSOR, MIDDAY) == []  # a model exists: the retrain waits for 02:00
    assert plan_day([], grown, day, {}).runs_for(Trigger.NIGHTLY, time(2)) != []
    assert plan_day([], grown, day, {run_key(Phase.RETRAIN, day): Outcome.SUCCEEDED}).runs == ()
    assert "no finished course has been frozen" in plan_day([], TrainingFacts(), day, {}).retrain_reason
    assert plan_day([], training(800, 300), day, {in_flight_key(Phase.RETRAIN): Outcome.IN_FLIGHT}).runs == ()


def test_a_new_installation_trains_its_first_models_once_nothing_is_left_to_freeze():
    day = date(2026, 10, 6)
    untrained = training(500, None)
    freezing = plan_day([course()], untrained, day, {})  # the course finished yesterday and is not frozen yet
    assert [(r.phase, r.first_model) for r in freezing.runs] == [(Phase.FREEZE, False), (Phase.RETRAIN, False)]
    frozen = plan_day([course(frozen_rows=300, last_freeze=FreezeFacts(CALENDAR.end, FROZEN, 300))], untrained, day, {})
    assert [(r.phase, r.first_model) for r in frozen.runs_for(Trigger.SENSOR, NIGHT)] == [(Phase.RETRAIN, True)]
    assert "fail_risk_model has no model yet: 500 training rows" in frozen.retrain_reason


def test_new_and_changed_courses_are_registered_upcoming_ones_included():
    upcoming = course(calendar=CourseCalendar("course-v1:T+NEXT+2027_S1", datetime(2027, 2, 1, 17), None), has_partition=False, stored=False)
    moved = course(stored=False)
    plan = plan_day([upcoming, moved], TRAINED, date(2026, 9, 8), {})
    register = plan.in_phase(Phase.REGISTER)
    assert len(register) == 1 and "2 courses new or changed" in register[0].reason
    assert plan.new_partitions == ("course-v1:T+NEXT+2027_S1",)
    assert [s.action for s in plan.courses if s.course_id == upcoming.course_id] == ["wait"]


def test_a_target_that_cannot_train_waits_for_new_rows_instead_of_retraining_every_day():
    """Seen on a platform whose only activity signal is assessments: the fail target could
    not train, and the planner launched nightly_retrain every day, re-registering the other
    target from the same rows."""
    stuck = training(500, 0, cannot_train="every held-out learner passed")
    for offset in range(28):
        plan = plan_day([], stuck, date(2026, 10, 6) + timedelta(days=offset), {})
        assert plan.runs == (), plan.retrain_reason
    assert "fail_risk_model could not train on them (every held-out learner passed): tried again once more rows are frozen" in plan.retrain_reason
    grown = TrainingFacts(700, (TargetFacts("fail_risk_model", None, 200, "every held-out learner passed"), TargetFacts("dropout_risk_model", "dropout_risk_model v1", 200)))
    retrain = plan_day([], grown, date(2026, 11, 3), {}).in_phase(Phase.RETRAIN)
    assert len(retrain) == 1 and not retrain[0].first_model  # tried, so the 02:00 schedule launches it, not the sensor


def test_a_finished_course_without_learners_or_snapshots_leaves_the_plan_once_frozen_with_nothing_to_learn():
    """A finished course with no learners (and no enrollment_count) failed every day; a
    one-day course 'succeeded' with 0 rows and was planned again daily."""
    for facts in (course(enrollment_count=None), course(calendar=replace(CALENDAR, start=datetime(2026, 10, 3, 17)))):
        day = date(2026, 10, 5)
        first = plan_day([facts], TRAINED, day, {})
        assert [r.phase for r in first.runs] == [Phase.FREEZE]
        done = replace(facts, last_freeze=FreezeFacts(facts.calendar.end, NOTHING_TO_LEARN, 0, "no snapshot before its end"))
        for offset in range(1, 10):
            later = plan_day([done], TRAINED, day + timedelta(days=offset), {})
            assert later.runs == () and later.courses[0].reason == "frozen with nothing to learn from: no snapshot before its end"


def test_a_course_whose_end_moves_after_its_freeze_runs_again_and_is_frozen_again_from_its_new_end():
    frozen_at_old_end = course(last_freeze=FreezeFacts(CALENDAR.end, FROZEN, 300), frozen_rows=300, last_predicted=date(2026, 10, 3))
    extended = replace(frozen_at_old_end, calendar=replace(CALENDAR, end=CALENDAR.end + timedelta(days=14)))
    actions = {}
    facts = extended
    for offset in range(0, 20):
        day = date(2026, 10, 6) + timedelta(days=offset)
        plan, facts = live_one_day(facts, day)
        actions[day] = (plan.courses[0].state, plan.courses[0].action, plan.courses[0].reason)
    assert actions[date(2026, 10, 6)][:2] == (CourseState.RUNNING, "refresh") and "re-opened" in actions[date(2026, 10, 6)][2]
    assert actions[date(2026, 10, 19)][:2] == (CourseState.FINISHED, "freeze") and "moved from 2026-10-04 to 2026-10-18" in actions[date(2026, 10, 19)][2]
    assert actions[date(2026, 10, 20)][:2] == (CourseState.FINISHED, "none")  # frozen at its new end: out of the plan


def test_a_course_that_left_the_catalogue_after_its_end_is_still_frozen():
    unlisted = course(listed=False)
    plan = plan_day([unlisted], TRAINED, date(2026, 10, 5), {})
    assert [r.phase for r in plan.runs] == [Phase.FREEZE] and "left the catalogue" in plan.courses[0].reason
    running = plan_day([unlisted], TRAINED, date(2026, 9, 20), {})
    assert running.runs == () and "left the catalogue" in running.courses[0].reason


def test_labels_are_frozen_after_the_grace_period_for_late_grades():
    facts, actions = course(), {}
    for offset in range(0, 12):
        day = date(2026, 10, 5) + timedelta(days=offset)
        plan, facts = live_one_day(facts, day, grace_days=7)
        actions[day] = plan.courses[0].action
    assert [actions[date(2026, 10, 5) + timedelta(days=n)] for n in range(6)] == ["wait"] * 6  # ended on Sunday 2026-10-04
    assert actions[date(2026, 10, 11)] == "freeze" and actions[date(2026, 10, 12)] == "none"


def test_a_run_still_queued_from_yesterday_is_not_launched_again():
    """attempts_on looked at today's runs only: yesterday's refresh, still queued behind a
    busy queue, got a twin today."""
    queued = {in_flight_key(Phase.REFRESH, CALENDAR.course_id): Outcome.IN_FLIGHT}
    plan = plan_day([course(last_predicted=date(2026, 9, 14))], TRAINED, date(2026, 9, 16), queued)
    assert plan.runs == () and plan.courses[0].reason == "refresh of an earlier day still queued or running"
