"""Models: the 2 AM schedule, versions, the champion/challenger gate, honest and repeatable evaluation."""

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.defs.resources import ClockResource
from dropout_pipeline.defs.schedules import nightly_retrain_schedule
from dropout_pipeline.lifecycle.facts import training_facts
from dropout_pipeline.modeling.retrain import CannotTrain, RetrainRequest, retrain, trainable_split
from dropout_pipeline.modeling.scorers import CatBoostScorer
from dropout_pipeline.modeling.split import holdout_split
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.feature_tables import insert_new_training_rows, read_training_data
from dropout_pipeline.storage.model_tables import courses_learned_by, default_model, model_for_course
from dropout_pipeline_tests.conftest import resources_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def request(trained, **overrides) -> RetrainRequest:
    values = dict(target="fail", model_name="fail_risk_model", models_dir=trained["models"], auc_floor=0.7, champion_margin=0.02)
    values.update(overrides)
    return RetrainRequest(**values)


def frozen_copy_of_a_course(trained, course_id: str, semester: str, source: int = 0, **labels) -> int:
    """Freeze a finished course's rows again under another course and semester (labels as given)."""
    engine = engine_for(trained["url"])
    with engine.connect() as connection:
        rows = read_training_data(connection, [trained["finished"][source]])
    rows = rows.drop(columns="id").assign(course_id=course_id, semester=semester, created_at=datetime.now(timezone.utc).replace(tzinfo=None), **labels)
    with engine.begin() as connection:
        return insert_new_training_rows(connection, rows)


def test_retraining_ticks_at_2am_local_time_and_retrains_only_what_is_new(simulator, trained_copy, instance):
    from dagster._utils.schedules import cron_string_iterator

    ticks = cron_string_iterator(datetime(2026, 11, 22, tzinfo=HCM).timestamp(), nightly_retrain_schedule.cron_schedule,
                                 nightly_retrain_schedule.execution_timezone)
    assert [next(ticks).astimezone(HCM) for _ in range(3)] == [datetime(2026, 11, day, 2, 0, tzinfo=HCM) for day in (22, 23, 24)]
    resources = {**resources_for(simulator, trained_copy["url"], trained_copy["models"]), "clock": ClockResource()}  # the tick's own time
    # 02:00 in Ho Chi Minh City is 19:00 UTC the day before: the day is the local one.
    at_two = datetime(2026, 11, 23, 19, 0, tzinfo=ZoneInfo("UTC"))

    def evaluate():
        with dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=at_two) as context:
            return nightly_retrain_schedule(context)

    nothing_new = evaluate()
    assert isinstance(nothing_new, dg.SkipReason) and "no training rows frozen since the models were last trained" in nothing_new.skip_message
    frozen_copy_of_a_course(trained_copy, "course-v1:UEL+COPY+2027_S1", "2027_S1")
    requests = evaluate()
    assert [(r.job_name, r.run_key) for r in requests] == [("nightly_retrain", "retrain-2026-11-24")]


def test_a_target_that_cannot_be_trained_fails_its_own_check_the_other_trains_and_the_old_default_serves(simulator, trained_copy, instance):
    """A new semester's course in which everyone passed: no fail-risk model can be judged on it."""
    frozen_copy_of_a_course(trained_copy, "course-v1:UEL+ALLPASS+2027_S1", "2027_S1", is_passed=True)
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"]))
    result = defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    refused = checks[("fail_risk_model", "trainable")]
    assert not refused.passed
    assert "held-out (course-v1:UEL+ALLPASS+2027_S1) rows (1 course) is 'passed'" in refused.description
    assert refused.description.endswith("fail_risk_model v1 keeps serving")
    assert checks[("dropout_risk_model", "trainable")].passed
    with engine_for(trained_copy["url"]).connect() as connection:
        versions = dict(connection.execute(sa.select(schema.model_registry.c.model_name, sa.func.max(schema.model_registry.c.model_version))
                                           .group_by(schema.model_registry.c.model_name)).all())
        assert default_model(connection, "fail")["model_version"] == 1
        training = training_facts(connection)
    assert versions == {"fail_risk_model": 1, "dropout_risk_model": 2}  # nothing registered for the refused one
    assert training.learned_rows < training.frozen_rows  # so the refused target is tried again at the next 02:00
    course_id = trained_copy["running"][0]
    instance.add_dynamic_partitions("courses", [course_id])
    refresh = defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id)
    scored = next(e for e in refresh.get_asset_materialization_events() if e.asset_key.to_user_string() == "predictions")
    assert scored.materialization.metadata["model"].value == "fail_risk_model v1"


def test_too_few_finished_courses_give_a_message_a_person_understands(trained_copy):
    with engine_for(trained_copy["url"]).connect() as connection:
        one_course = read_training_data(connection, trained_copy["finished"][:1])
    with pytest.raises(CannotTrain, match="need finished courses on both sides of the split, have 1"):
        trainable_split(one_course, "fail")
    with pytest.raises(CannotTrain, match="training_data is empty: no finished course has been frozen yet"):
        trainable_split(one_course.iloc[:0], "dropout")


def test_no_course_is_on_both_sides_of_the_split(trained_copy):
    with engine_for(trained_copy["url"]).connect() as connection:
        data = read_training_data(connection)
    split = holdout_split(data)
    assert set(split.train["course_id"]).isdisjoint(split.holdout["course_id"])
    assert split.holdout["semester"].unique().tolist() == [sorted(data["semester"].unique())[-1]]
    one_semester = holdout_split(data[data["semester"] == data["semester"].min()])
    assert set(one_semester.train["course_id"]).isdisjoint(one_semester.holdout["course_id"]) and len(one_semester.holdout_courses) >= 1


def test_the_nightly_run_registered_gated_and_recorded_both_models(trained_copy):
    with engine_for(trained_copy["url"]).connect() as connection:
        fail, dropout = default_model(connection, "fail"), default_model(connection, "dropout")
        performance = pd.read_sql(sa.select(schema.model_performance), connection)
        used = connection.execute(sa.select(sa.func.count()).select_from(schema.training_data_usage)).scalar()
    assert (fail["model_version"], dropout["model_version"]) == (1, 1)
    assert fail["is_active"] and fail["features"] and fail["metrics"]["n_samples"] > 0
    weekly = performance[(performance.scorer == "catboost") & (performance.course_id == "all") & performance.snapshot_week.notna()]
    assert len(weekly) >= 10 and (weekly.n_samples > 0).all()
    assert {"catboost", "logistic_regression", "rule_grade_activity"} == set(performance.scorer)
    assert used == 2 * fail["training_rows"]  # both models mark the rows they learned from


def test_versions_increase_and_a_weak_model_is_rejected_keeping_the_old_default(trained_copy):
    engine = engine_for(trained_copy["url"])
    weak = retrain(engine, request(trained_copy, iterations=1, champion_margin=0.0))
    assert weak.model_version == 2
    assert weak.champion["challenger_roc_auc"] < weak.champion["roc_auc"]
    assert not weak.passed_champion and not weak.promoted
    strict = retrain(engine, request(trained_copy, auc_floor=0.9999))
    assert strict.model_version == 3 and not strict.passed_floor and not strict.promoted
    with engine.connect() as connection:
        assert default_model(connection, "fail")["model_version"] == 1
        registered = connection.execute(sa.select(schema.model_registry.c.model_version, schema.model_registry.c.is_active)
                                        .where(schema.model_registry.c.model_name == "fail_risk_model")).all()
    assert sorted(registered) == [(1, True), (2, False), (3, False)]


def test_retraining_twice_on_the_same_data_gives_the_same_metrics_and_the_same_model(trained_copy):
    engine = engine_for(trained_copy["url"])
    first, second = retrain(engine, request(trained_copy)), retrain(engine, request(trained_copy))
    assert second.model_version == first.model_version + 1
    assert first.evaluations == second.evaluations
    # The first version learned from every course, the held-out ones too: no course is left
    # that it never saw, so both are compared as fitted on everything, like with like.
    assert second.champion["note"] == "the whole holdout, which both learned from"
    assert second.champion["challenger_roc_auc"] == second.champion["roc_auc"] and second.promoted


def test_the_default_is_challenged_on_held_out_courses_it_never_learned_from(trained_copy):
    first, second = "course-v1:UEL+COPY+2027_S1", "course-v1:UEL+COPYB+2027_S1"
    frozen_copy_of_a_course(trained_copy, first, "2027_S1")
    engine = engine_for(trained_copy["url"])
    result = retrain(engine, request(trained_copy))
    assert result.holdout_courses == (first,) and result.promoted
    assert result.champion["compared_on"] == [first] and result.champion["note"].startswith("held-out courses the default never learned from")
    with engine.connect() as connection:  # the version deployed learned from every frozen row, the held-out course's included
        assert result.training_rows == connection.execute(sa.select(sa.func.count()).select_from(schema.training_data)).scalar()
        assert first in courses_learned_by(connection, "fail_risk_model", result.model_version)
    # A second course of the same semester: the new default learned from the first, so only the
    # second is new to it, and the challenger is judged there by a twin that never saw it either.
    frozen_copy_of_a_course(trained_copy, second, "2027_S1", source=1)
    later = retrain(engine, request(trained_copy))
    assert later.holdout_courses == (first, second) and later.champion["compared_on"] == [second]
    assert later.champion["model_version"] == result.model_version


def test_the_gate_check_blocks_in_dagster_and_records_metrics(simulator, trained_copy, instance):
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"], auc_floor=0.9999))
    result = defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance, raise_on_error=False)
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    floor = checks[("fail_risk_model", "roc_auc_above_floor")]
    assert not floor.passed and floor.metadata["floor"].value == 0.9999 and 0.5 < floor.metadata["roc_auc"].value < 1
    with engine_for(trained_copy["url"]).connect() as connection:
        assert default_model(connection, "fail")["model_version"] == 1


def test_a_domain_model_serves_its_courses_and_the_default_serves_the_rest(simulator, trained_copy, instance):
    # A permissive gate: this test is about mapping; the gate's refusals are tested above.
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"], auc_floor=0.5, champion_margin=1.0))
    with engine_for(trained_copy["url"]).connect() as connection:
        orgs = dict(connection.execute(sa.select(schema.courses.c.course_id, schema.courses.c.org)).all())
    org = orgs[trained_copy["running"][0]]
    config = {"ops": {"train_domain_model": {"config": {"model_name": f"{org.lower()}_fail", "org": org}}}}
    assert defs.resolve_job_def("train_domain_model_job").execute_in_process(instance=instance, run_config=config).success
    with engine_for(trained_copy["url"]).connect() as connection:
        model = connection.execute(sa.select(schema.model_registry).where(schema.model_registry.c.domain == org)).mappings().one()
        picked = {course: model_for_course(connection, course)["model_name"] for course in orgs}
    assert model["is_active"] and not model["is_default"]
    assert {c for c, name in picked.items() if name == f"{org.lower()}_fail"} == {c for c, o in orgs.items() if o == org}
    assert {name for c, name in picked.items() if orgs[c] != org} == {"fail_risk_model"}


def test_the_deployed_model_is_calibrated_and_a_model_saved_before_calibration_still_loads(trained_copy):
    with engine_for(trained_copy["url"]).connect() as connection:
        fail = default_model(connection, "fail")
        rows = read_training_data(connection).head(500)
    path = Path(fail["model_path"])
    model = CatBoostScorer.load(path)
    assert model.calibration is not None and model.calibration.slope > 0
    raw, calibrated = model.raw_proba(rows), model.predict_proba(rows)
    assert not np.allclose(raw, calibrated) and (np.diff(calibrated[np.argsort(raw)]) >= 0).all()  # the ranking kept
    assert 0 < fail["metrics"]["calibration_error"] < 0.1 and fail["metrics"]["n_samples"] > 0  # measured on the held-out courses, with n
    path.with_suffix(".calibration.json").unlink()  # as saved by an earlier release
    assert np.allclose(CatBoostScorer.load(path).predict_proba(rows), raw)
