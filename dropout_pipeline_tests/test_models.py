"""Models: the 2 AM schedule, versions, the champion/challenger gate, honest and repeatable evaluation."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.defs.schedules import nightly_retrain_schedule
from dropout_pipeline.modeling.retrain import RetrainRequest, retrain
from dropout_pipeline.modeling.split import holdout_split
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.feature_tables import read_training_data
from dropout_pipeline.storage.model_tables import default_model, model_for_course
from dropout_pipeline_tests.conftest import resources_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def request(trained, **overrides) -> RetrainRequest:
    values = dict(target="fail", model_name="fail_risk_model", models_dir=trained["models"], auc_floor=0.7, champion_margin=0.02)
    values.update(overrides)
    return RetrainRequest(**values)


def test_retraining_is_scheduled_at_2am_local_time_and_at_no_other_hour():
    assert nightly_retrain_schedule.cron_schedule == "0 2 * * *"
    assert nightly_retrain_schedule.execution_timezone == "Asia/Ho_Chi_Minh"
    at_two = nightly_retrain_schedule(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 23, 2, 0, tzinfo=HCM)))
    assert isinstance(at_two, dg.RunRequest) and at_two.run_key == "retrain-2026-11-23"
    for hour in (0, 1, 3, 14, 23):
        other = nightly_retrain_schedule(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 23, hour, 0, tzinfo=HCM)))
        assert isinstance(other, dg.SkipReason), hour
    # 02:00 in Ho Chi Minh City is 19:00 UTC the day before
    utc = nightly_retrain_schedule(dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 22, 19, 0, tzinfo=ZoneInfo("UTC")).astimezone(HCM)))
    assert isinstance(utc, dg.RunRequest)


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
    assert weak.overall()["roc_auc"] < weak.champion["roc_auc"]
    assert not weak.passed_champion and not weak.promoted
    strict = retrain(engine, request(trained_copy, auc_floor=0.9999))
    assert strict.model_version == 3 and not strict.passed_floor and not strict.promoted
    with engine.connect() as connection:
        assert default_model(connection, "fail")["model_version"] == 1
        registered = connection.execute(sa.select(schema.model_registry.c.model_version, schema.model_registry.c.is_active)
                                        .where(schema.model_registry.c.model_name == "fail_risk_model")).all()
    assert sorted(registered) == [(1, True), (2, False), (3, False)]


def test_retraining_twice_on_the_same_data_gives_the_same_metrics(trained_copy):
    engine = engine_for(trained_copy["url"])
    first, second = retrain(engine, request(trained_copy)), retrain(engine, request(trained_copy))
    assert second.model_version == first.model_version + 1
    assert first.evaluations == second.evaluations
    assert second.promoted  # as good as the champion: promoted


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
