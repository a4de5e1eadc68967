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
from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.defs.resources import ClockResource
from dropout_pipeline.defs.schedules import nightly_retrain_schedule
from dropout_pipeline.lifecycle.facts import training_facts
from dropout_pipeline.modeling.retrain import RULE, CannotTrain, RetrainRequest, evaluated_artifact, retrain, trainable_split
from dropout_pipeline.modeling.scorers import CANDIDATES, load_scorer
from dropout_pipeline.modeling.split import holdout_split
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.feature_tables import insert_new_training_rows, read_training_data
from dropout_pipeline.storage.model_tables import courses_learned_by, default_model, model_for_course
from dropout_pipeline_tests.conftest import TODAY, course_ids, resources_for

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
    assert result.success  # a target that cannot train is the gate working: no failed run, no alert
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    refused = checks[("fail_risk_model", "trainable")]
    assert not refused.passed and refused.severity is dg.AssetCheckSeverity.WARN
    assert "held-out (course-v1:UEL+ALLPASS+2027_S1) rows (1 course) is 'passed'" in refused.description
    assert refused.description.endswith("fail_risk_model v1 keeps serving")
    assert checks[("dropout_risk_model", "trainable")].passed
    with engine_for(trained_copy["url"]).connect() as connection:
        versions = dict(connection.execute(sa.select(schema.model_registry.c.model_name, sa.func.max(schema.model_registry.c.model_version))
                                           .group_by(schema.model_registry.c.model_name)).all())
        assert default_model(connection, "fail")["model_version"] == 1
        training = training_facts(connection)
    assert versions == {"fail_risk_model": 1, "dropout_risk_model": 2}  # nothing registered for the refused one
    fail_target = next(t for t in training.targets if t.model_name == "fail_risk_model")
    assert fail_target.cannot_train and fail_target.unseen_rows == 0  # tried again only once more rows are frozen, not every night
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
    weekly = performance[(performance.scorer == fail["metrics"]["candidate"]) & (performance.course_id == "all") & performance.snapshot_week.notna()]
    assert len(weekly) >= 10 and (weekly.n_samples > 0).all()
    assert {*CANDIDATES, RULE} == set(performance.scorer)
    assert used == 2 * fail["training_rows"]  # both models mark the rows they learned from


def test_versions_increase_and_a_weak_model_is_rejected_keeping_the_old_default(trained_copy):
    frozen_copy_of_a_course(trained_copy, "course-v1:UEL+COPY+2027_S1", "2027_S1")  # a course the default never learned from
    engine = engine_for(trained_copy["url"])
    weak = retrain(engine, request(trained_copy, candidates=("catboost",), catboost_iterations=1, champion_margin=0.0))
    assert weak.model_version == 2 and weak.champion["compared"]
    assert weak.champion["challenger_roc_auc"] < weak.champion["roc_auc"]
    assert not weak.passed_champion and not weak.promoted
    strict = retrain(engine, request(trained_copy, auc_floor=1.01))  # above any ROC AUC: the held-out copy of a training course can score 1.0
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
    assert first.evaluations == second.evaluations and first.chosen == second.chosen
    # The default learned from every course: none is left that it never saw, so nothing can be
    # compared honestly, and it keeps serving (a warning, not a failure).
    assert not second.champion["compared"] and "nothing to compare on" in second.champion["note"]
    assert not second.promoted and not first.promoted


def test_the_gate_warns_and_keeps_the_default_when_nothing_new_can_be_compared(simulator, trained_copy, instance):
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"]))
    result = defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success  # a warning does not block
    gate = {c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations() if c.check_name == "not_worse_than_champion"}
    assert {name: (c.passed, c.severity) for name, c in gate.items()} == {
        "fail_risk_model": (False, dg.AssetCheckSeverity.WARN), "dropout_risk_model": (False, dg.AssetCheckSeverity.WARN)}
    with engine_for(trained_copy["url"]).connect() as connection:
        assert default_model(connection, "fail")["model_version"] == 1


def test_the_default_is_challenged_on_held_out_courses_it_never_learned_from(trained_copy):
    first, second = "course-v1:UEL+COPY+2027_S1", "course-v1:UEL+COPYB+2027_S1"
    frozen_copy_of_a_course(trained_copy, first, "2027_S1")
    engine = engine_for(trained_copy["url"])
    result = retrain(engine, request(trained_copy))
    assert result.holdout_courses == (first,) and result.promoted
    assert result.champion["compared_on"] == [first] and result.champion["note"] == "courses neither model learned from"
    with engine.connect() as connection:  # the gate never scores the default on a course it learned from
        assert not set(result.champion["compared_on"]) & courses_learned_by(connection, "fail_risk_model", 1)
    assert set(result.champion["per_week"]) == set(range(1, 16)) and all({"default", "new", "n"} <= set(v) for v in result.champion["per_week"].values())
    with engine.connect() as connection:  # the version deployed learned from every frozen row, the held-out course's included
        assert result.training_rows == connection.execute(sa.select(sa.func.count()).select_from(schema.training_data)).scalar()
        assert first in courses_learned_by(connection, "fail_risk_model", result.model_version)
    # A second course of the same semester: the new default learned from the first, so only the
    # second is new to it, and the challenger is judged there by a twin that never saw it either.
    frozen_copy_of_a_course(trained_copy, second, "2027_S1", source=1)
    later = retrain(engine, request(trained_copy))
    assert later.holdout_courses == (first, second) and later.champion["compared_on"] == [second]
    assert later.champion["model_version"] == result.model_version


def test_a_challenger_refused_by_the_gate_is_a_warning_not_a_failed_run(simulator, trained_copy, instance):
    """A refused challenger printed FAILED in the cycle and raised an alert: it is the gate working."""
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"], auc_floor=0.9999))
    result = defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    floor = checks[("fail_risk_model", "roc_auc_above_floor")]
    assert not floor.passed and floor.severity is dg.AssetCheckSeverity.WARN
    assert floor.metadata["floor"].value == 0.9999 and 0.5 < floor.metadata["roc_auc"].value < 1
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
    model = load_scorer(path)
    assert model.calibration is not None and model.calibration.slope > 0
    raw, calibrated = model.raw_proba(rows), model.predict_proba(rows)
    assert not np.allclose(raw, calibrated) and (np.diff(calibrated[np.argsort(raw)]) >= 0).all()  # the ranking kept
    assert 0 < fail["metrics"]["calibration_error"] < 0.1 and fail["metrics"]["n_samples"] > 0  # measured on the held-out courses, with n
    path.with_suffix(".calibration.json").unlink()  # as saved by an earlier release
    assert np.allclose(load_scorer(path).predict_proba(rows), raw)


def test_the_candidate_chosen_is_the_best_at_early_warning_and_is_deployed_refitted_on_every_row(trained_copy):
    engine = engine_for(trained_copy["url"])
    result = retrain(engine, request(trained_copy))
    early = {name: result.early_auc(name) for name in CANDIDATES}
    with engine.connect() as connection:
        registered = connection.execute(sa.select(schema.model_registry).where(
            schema.model_registry.c.model_name == "fail_risk_model", schema.model_registry.c.model_version == result.model_version)).mappings().one()
        performance = pd.read_sql(sa.select(schema.model_performance).where(schema.model_performance.c.model_version == result.model_version), connection)
        rows = read_training_data(connection)
    assert registered["metrics"]["candidate"] == result.chosen and registered["metrics"]["early_weeks_roc_auc"] == early
    # Every candidate's per-week figures are recorded, the rule's too.
    weekly = performance[(performance.course_id == "all") & performance.snapshot_week.notna()]
    assert set(weekly.scorer) == {*CANDIDATES, RULE}
    assert weekly.groupby("scorer").size().nunique() == 1
    # From the stored rows: the best on the training courses' out-of-fold predictions (where the
    # choice is made), judged on the held-out courses (test_retrain: the two never meet).
    recorded = weekly[weekly.snapshot_week.between(1, 4)].groupby("scorer")[["roc_auc", "selection_roc_auc"]].mean()
    assert recorded.loc[result.chosen, "selection_roc_auc"] == max(recorded.loc[name, "selection_roc_auc"] for name in CANDIDATES)
    assert recorded.loc[result.chosen, "selection_roc_auc"] == pytest.approx(result.selection_auc())
    assert recorded.loc[result.chosen, "roc_auc"] == pytest.approx(early[result.chosen])
    # Two artifacts: the one judged (training courses only) and the one deployed (every row).
    evaluated, deployed = load_scorer(evaluated_artifact(Path(registered["model_path"]))), load_scorer(Path(registered["model_path"]))
    assert registered["training_rows"] == len(rows) and type(evaluated) is type(deployed)
    held_out = rows[rows["course_id"].isin(result.holdout_courses)]
    assert not np.allclose(evaluated.raw_proba(held_out), deployed.raw_proba(held_out))  # the deployed one learned the holdout too


def test_predictions_made_on_any_day_of_a_course_week_rank_as_well_as_those_made_on_its_last_day(trained_copy):
    """Training rows on days 1, 4 and 7: a day-1 prediction is not a week-k learner judged with week k-1's work."""
    result = retrain(engine_for(trained_copy["url"]), request(trained_copy))
    days = result.by_week_day
    assert set(days) == {1, 4, 7} and all(row["n_samples"] > 1000 for row in days.values())
    assert all(days[day]["roc_auc"] >= days[7]["roc_auc"] - 0.01 for day in (1, 4)), days


@pytest.mark.parametrize("kind", list(CANDIDATES))
def test_every_candidate_explains_its_scores_exactly_in_dictionary_features_and_survives_a_round_trip(trained_copy, tmp_path, kind):
    with engine_for(trained_copy["url"]).connect() as connection:
        rows = read_training_data(connection)
    model = CANDIDATES[kind].fit(rows, "dropout")
    cohort = rows[rows["snapshot_date"] == rows["snapshot_date"].max()]  # one course on one day, as a course is scored
    cohort = cohort[cohort["course_id"] == cohort["course_id"].iloc[0]]
    p = model.raw_proba(cohort)
    contributions = model.contributions(cohort)
    assert contributions.shape == (len(cohort), len(model.features)) and model.features == list(FEATURE_NAMES)
    offset = np.log(p / (1 - p)) - contributions.sum(axis=1)
    assert np.allclose(offset, offset[0], atol=1e-6)  # log-odds = a constant + the sum of the contributions, for every learner
    assert set(model.feature_importance()) <= set(FEATURE_NAMES)  # ranks are credited to the features they rank
    model.save(tmp_path / f"v1{model.suffix}")
    loaded = load_scorer(tmp_path / f"v1{model.suffix}")
    assert type(loaded) is type(model) and np.allclose(loaded.predict_proba(cohort), model.predict_proba(cohort))
    assert np.allclose(loaded.contributions(cohort), contributions)
    with pytest.raises(ValueError, match="not a saved model"):
        load_scorer(tmp_path / "v1.features.json")


def test_a_missing_value_says_something_in_a_logistic_model(trained_copy):
    from dropout_pipeline.modeling.scorers import LogisticScorer

    with engine_for(trained_copy["url"]).connect() as connection:
        rows = read_training_data(connection)
    model = LogisticScorer.fit(rows, "dropout")
    missing = model.contributions(rows.head(300).assign(days_since_last_activity=np.nan))
    assert np.abs(missing[:, model.features.index("days_since_last_activity")]).max() > 0


def test_the_whole_pipeline_on_a_realistic_platform_trains_both_candidates_and_predicts_calibrated_scores(instance, tmp_path):
    """The realistic profile, small: three finished courses of one semester (one held out),
    some without H5P or videos, loose outcomes; every step runs and every candidate is judged."""
    from dropout_pipeline.simulator.runner import simulator_thread
    from dropout_pipeline.simulator.server import SimulatorState
    from dropout_pipeline.simulator.world import profile_settings

    world = profile_settings("realistic", seed=7, today=TODAY, running_courses=1, min_learners=30, max_learners=150)
    url = f"sqlite:///{tmp_path / 'realistic.db'}"
    with simulator_thread(SimulatorState(world=world)) as platform:
        defs = build_definitions(resources_for(platform, url, tmp_path / "models", auc_floor=0.5))
        finished, running = course_ids(platform)
        assert len(finished) == 3
        assert defs.resolve_job_def("discover_courses").execute_in_process(instance=instance).success
        for course_id in finished:
            assert defs.resolve_job_def("course_history").execute_in_process(instance=instance, partition_key=course_id).success
        nightly = defs.resolve_job_def("nightly_retrain").execute_in_process(instance=instance)
        assert nightly.success
        assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=running[0]).success
    with engine_for(url).connect() as connection:
        performance = pd.read_sql(sa.select(schema.model_performance), connection)
        models = {target: default_model(connection, target) for target in ("fail", "dropout")}
        predictions = pd.read_sql(sa.select(schema.predictions).where(schema.predictions.c.course_id == running[0]), connection)
        enrolled = connection.execute(sa.select(sa.func.count()).select_from(schema.enrollments).where(schema.enrollments.c.course_id == running[0])).scalar()
    assert set(performance.scorer) == {*CANDIDATES, RULE}
    assert all(model["metrics"]["candidate"] in CANDIDATES for model in models.values())
    assert len(predictions) == enrolled > 0
    for event in nightly.get_asset_materialization_events():  # predictions made early in a week rank like those at its end
        days = event.materialization.metadata["roc_auc_by_day_of_week"].value
        assert set(days) == {"1", "4", "7"} and all(days[d]["roc_auc"] >= days["7"]["roc_auc"] - 0.01 for d in ("1", "4")), days
    for score in ("fail_risk_score", "dropout_risk_score"):
        assert predictions[score].between(0, 100, inclusive="neither").all() and predictions[score].nunique() > len(predictions) // 2
