"""Retraining: a candidate chosen apart from the courses that judge it; versions and files
that two retrains of one model at once never share."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.modeling.calibration import PlattCalibration
from dropout_pipeline.modeling.retrain import RULE, RetrainRequest, evaluated_artifact, retrain
from dropout_pipeline.modeling.scorers import CANDIDATES, LogisticScorer, Scorer, load_scorer, target_values
from dropout_pipeline.modeling.split import holdout_split
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.feature_tables import insert_new_training_rows, read_training_data

def _key(row) -> tuple:
    return (int(row.user_id), str(row.course_id), str(row.snapshot_date))


def _noise(key: tuple) -> float:
    """A fixed number in [0, 1) per row, from nothing the row's outcome depends on."""
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:8], 16) / 16**8


@dataclass
class LuckyScorer(Scorer):
    """A candidate that is right on the held-out courses by chance and knows nothing
    anywhere else: the best there, as one of many candidates can be by luck alone."""

    features: list[str]
    calibration: PlattCalibration | None = None
    answers: ClassVar[dict[tuple, int]] = {}  # the outcome of every row of the held-out courses, set by the test
    model_type = "Lucky"
    suffix = ".lucky"

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str, **settings) -> LuckyScorer:
        return cls(list(FEATURE_NAMES))

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        keys = [_key(row) for row in frame.itertuples()]
        return np.array([0.05 + 0.9 * self.answers[k] + 0.04 * _noise(k) if k in self.answers else 0.1 + 0.8 * _noise(k) for k in keys])

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        return {}

    def _save_model(self, path: Path) -> None:
        path.write_text("lucky")

    @classmethod
    def load(cls, path: Path) -> LuckyScorer:
        features, calibration = json.loads(path.with_suffix(".features.json").read_text()), None
        return cls(features, calibration)


def retrain_request(trained, **overrides) -> RetrainRequest:
    values = dict(target="fail", model_name="fail_risk_model", models_dir=trained["models"], auc_floor=0.7, champion_margin=0.02)
    values.update(overrides)
    return RetrainRequest(**values)


def test_a_candidate_best_on_the_held_out_courses_by_chance_is_not_chosen_and_both_aucs_are_stored(trained_copy, monkeypatch):
    engine = engine_for(trained_copy["url"])
    with engine.connect() as connection:
        split = holdout_split(read_training_data(connection))
    held_out = split.holdout.assign(fail=target_values(split.holdout, "fail"))
    monkeypatch.setattr(LuckyScorer, "answers", {_key(row): int(row.fail) for row in held_out.itertuples()})
    monkeypatch.setitem(CANDIDATES, "lucky", LuckyScorer)

    result = retrain(engine, retrain_request(trained_copy, candidates=("logistic_regression", "lucky")))

    # On the held-out courses the lucky candidate is the best by far; it is not chosen,
    # because the choice was made on the training courses, where it knows nothing.
    assert result.early_auc("lucky") > 0.95 > result.early_auc("logistic_regression")
    assert result.chosen == "logistic_regression"
    assert result.selection_auc("lucky") < 0.6 < result.selection_auc("logistic_regression")
    # The choice's courses and the gate's never meet.
    assert set(result.selected_on) == set(split.train["course_id"]) and not set(result.selected_on) & set(result.holdout_courses)

    with engine.connect() as connection:
        registered = connection.execute(sa.select(schema.model_registry).where(
            schema.model_registry.c.model_name == "fail_risk_model", schema.model_registry.c.model_version == result.model_version)).mappings().one()
        performance = pd.read_sql(sa.select(schema.model_performance).where(
            schema.model_performance.c.model_name == "fail_risk_model", schema.model_performance.c.model_version == result.model_version), connection)
    metrics = registered["metrics"]
    assert metrics["selection_early_weeks_roc_auc"] == {name: result.selection_auc(name) for name in ("logistic_regression", "lucky")}
    assert metrics["early_weeks_roc_auc"] == {name: result.early_auc(name) for name in ("logistic_regression", "lucky")}
    assert metrics["selected_on"] == sorted(result.selected_on)
    # Each week's row of all held-out courses carries both AUCs, each with its own rows.
    weekly = performance[(performance.course_id == "all") & performance.snapshot_week.notna()].set_index(["scorer", "snapshot_week"])
    early = weekly.loc["logistic_regression"].loc[[1, 2, 3, 4]]
    assert early.selection_roc_auc.notna().all() and early.roc_auc.notna().all() and (early.selection_n_samples > 0).all()
    assert early.selection_roc_auc.mean() == pytest.approx(result.selection_auc("logistic_regression"))
    assert early.roc_auc.mean() == pytest.approx(result.early_auc("logistic_regression"))
    assert weekly.loc[RULE].selection_roc_auc.notna().any()  # the rule on the same training rows, for scale
    # A held-out course's own rows have nothing beside them: nothing was chosen on it.
    assert performance[performance.course_id.isin(result.holdout_courses)].selection_roc_auc.isna().all()


def test_with_three_training_courses_or_more_the_choice_fits_nothing_beyond_calibration(trained_copy, monkeypatch):
    """The out-of-fold predictions calibration needs are the ones the choice is made on."""
    engine = engine_for(trained_copy["url"])
    with engine.connect() as connection:
        data = read_training_data(connection)
    oldest = sorted(data["semester"].unique())[0]
    first = data[data["course_id"] == sorted(data.loc[data["semester"] == oldest, "course_id"].unique())[0]]
    third = first.drop(columns="id").assign(course_id="course-v1:UEL+THIRD+2026_S1", created_at=datetime(2026, 11, 22))
    with engine.begin() as connection:  # a third course of the oldest semester: a third training course
        insert_new_training_rows(connection, third)
    fits = []
    original = LogisticScorer.fit.__func__
    monkeypatch.setattr(LogisticScorer, "fit", classmethod(lambda cls, *args, **kwargs: fits.append(1) or original(cls, *args, **kwargs)))
    # A model of its own (no default to challenge, so no twin is fitted for the comparison).
    result = retrain(engine, retrain_request(trained_copy, model_name="three_courses", domain="custom", candidates=("logistic_regression",)))
    assert len(result.selected_on) == 3 and result.selection_auc() is not None
    assert len(fits) == 1 + 3 + 1  # judged, three cross-fitted folds (calibration's and the choice's), deployed


def _postgres_copy(trained_copy: dict, url: str) -> str:
    """The trained world's training rows in a fresh PostgreSQL database (no model yet)."""
    with engine_for(trained_copy["url"]).connect() as connection:
        rows = read_training_data(connection).drop(columns="id")
    with engine_for(url).begin() as connection:
        insert_new_training_rows(connection, rows)
    return url


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_two_retrains_of_one_model_at_once_get_two_versions_and_never_overwrite_each_others_files(trained_copy, engine_name, monkeypatch, request):
    url = trained_copy["url"] if engine_name == "sqlite" else _postgres_copy(trained_copy, request.getfixturevalue("postgres_url"))
    engine = engine_for(url)
    # Both retrains reach their first file write together: whatever version each holds
    # by then, it holds at the same moment as the other.
    both_saving, waited = threading.Barrier(2, timeout=120), threading.local()
    save = Scorer.save

    def save_when_both_save(self, path):
        if not getattr(waited, "done", False):
            waited.done = True
            both_saving.wait()
        save(self, path)

    monkeypatch.setattr(Scorer, "save", save_when_both_save)
    kinds = ("logistic_regression", "random_forest")  # their files share names but for the model's own suffix
    results, errors = {}, []

    def run(kind):
        try:
            results[kind] = retrain(engine, retrain_request(trained_copy, model_name="race_model", candidates=(kind,), auc_floor=0.5))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
            both_saving.abort()

    threads = [threading.Thread(target=run, args=(kind,)) for kind in kinds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert {results[kind].model_version for kind in kinds} == {1, 2}
    with engine.connect() as connection:
        registry = schema.model_registry
        rows = {row["model_version"]: row for row in connection.execute(sa.select(registry).where(registry.c.model_name == "race_model")).mappings()}
        defaults = connection.execute(sa.select(registry.c.model_name, registry.c.model_version).where(
            registry.c.target == "fail", registry.c.is_default.is_(True))).all()
        usage = dict(connection.execute(sa.select(schema.training_data_usage.c.model_version, sa.func.count())
                                        .where(schema.training_data_usage.c.model_name == "race_model")
                                        .group_by(schema.training_data_usage.c.model_version)).all())
    for kind in kinds:
        result = results[kind]
        row = rows[result.model_version]
        assert Path(row["model_path"]) == result.model_path.resolve() and row["model_type"] == type(load_scorer(result.model_path)).model_type
        # Each version's files are its own retrain's: the model, its calibration, its judged twin.
        deployed, judged = load_scorer(result.model_path), load_scorer(evaluated_artifact(result.model_path))
        assert isinstance(deployed, CANDIDATES[kind]) and isinstance(judged, CANDIDATES[kind])
        assert (deployed.calibration.__dict__ if deployed.calibration else None) == result.calibration["deployed"]
        assert usage[result.model_version] == result.training_rows
    assert len(defaults) <= 1  # one default per target, however the promotions interleaved
    leftovers = [p.name for p in (trained_copy["models"] / "race_model").iterdir() if not p.name.startswith("v")]
    assert not leftovers, leftovers


def test_a_retrain_that_fails_once_its_version_is_taken_gives_the_version_back_and_leaves_no_file(trained_copy, monkeypatch):
    engine = engine_for(trained_copy["url"])
    original = Scorer.save

    def full_disk(self, path):
        original(self, path)  # the first file lands, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Scorer, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        retrain(engine, retrain_request(trained_copy, candidates=("logistic_regression",)))
    registry = schema.model_registry
    with engine.connect() as connection:
        versions = connection.execute(sa.select(registry.c.model_version).where(registry.c.model_name == "fail_risk_model")).scalars().all()
    assert versions == [1]
    assert sorted(p.name for p in (trained_copy["models"] / "fail_risk_model").iterdir() if not p.name.startswith("v1")) == []
    monkeypatch.setattr(Scorer, "save", original)
    assert retrain(engine, retrain_request(trained_copy, candidates=("logistic_regression",))).model_version == 2
