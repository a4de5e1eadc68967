"""Retraining: learn from training_data, prove it on held-out courses, register, gate.

A model is judged by a twin fitted without the held-out courses; the version deployed is
then fitted on every frozen row, so a course that has just finished (the most recent
semester, the one most like what comes next) improves the very next model instead of
only judging it. Each version is registered and its evaluation recorded (the history
behind trend charts); it becomes the default only when it passes the gate: ROC AUC on
the holdout at least the floor, and not worse than the current default by more than the
margin, compared like with like (see _champion_comparison). Its `training_rows` is every
row it learned from, so rows frozen since (the table only grows) are what is new to it.
Scores are calibrated (modeling.calibration): the judged model from its training courses'
out-of-fold predictions, the deployed one from every out-of-sample prediction there is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.modeling.calibration import PlattCalibration, out_of_fold
from dropout_pipeline.modeling.metrics import classification_metrics, evaluation_rows, expected_calibration_error, reliability_table
from dropout_pipeline.modeling.scorers import CatBoostScorer, fit_logistic_baseline, ordered, rule_baseline, target_values
from dropout_pipeline.modeling.split import Split, holdout_split
from dropout_pipeline.storage import model_tables
from dropout_pipeline.storage.feature_tables import read_training_data

THRESHOLD = 0.5
MIN_TRAINING_ROWS = 100
# The models the nightly retrain keeps current, one per target; domain models are extra.
NIGHTLY_MODELS = {"fail": "fail_risk_model", "dropout": "dropout_risk_model"}
OUTCOME_WORDS = {"fail": ("passed", "failed"), "dropout": ("stayed", "dropped out")}


class CannotTrain(ValueError):
    """The training data cannot give a model that can be judged honestly; says why in words."""


@dataclass(frozen=True)
class RetrainRequest:
    target: str  # "fail" or "dropout"
    model_name: str
    models_dir: Path
    auc_floor: float
    champion_margin: float
    domain: str = "all"
    course_ids: list[str] | None = None  # a domain model's courses; None: every course
    iterations: int = 300


@dataclass
class RetrainResult:
    model_name: str
    model_version: int
    model_path: Path
    training_rows: int
    holdout_courses: tuple[str, ...]
    split_strategy: str
    evaluations: dict[str, list[dict]]  # scorer -> rows (overall, per week, per course)
    feature_importance: dict[str, float]
    champion: dict | None = None  # the default it was compared to: both ROC AUCs and the courses compared on
    calibration: dict = field(default_factory=dict)  # the map deployed, and ECE before/after on the holdout with its reliability table
    passed_floor: bool = False
    passed_champion: bool = False
    promoted: bool = False
    notes: list[str] = field(default_factory=list)

    def overall(self, scorer: str = "catboost") -> dict:
        return self.evaluations[scorer][0]

    def per_week(self, scorer: str = "catboost") -> list[dict]:
        return [row for row in self.evaluations[scorer] if row["course_id"] == "all" and row["snapshot_week"] is not None]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _champion_comparison(
    champion: dict | None, seen_courses: set[str], data: pd.DataFrame, split: Split, fitted: dict[str, CatBoostScorer], request: RetrainRequest
) -> dict | None:
    """Champion and challenger ROC AUC on the same held-out rows, like with like.

    On held-out courses the champion never learned from, the challenger is a twin fitted
    on every row but theirs (the champion's data and anything else new); where there are
    none (or they hold one outcome only), both are compared on the whole holdout as they
    are deployed, having both learned from it.
    """
    if champion is None:
        return None
    path = Path(champion["model_path"])
    if not path.exists():
        return {"model_version": champion["model_version"], "roc_auc": None, "note": f"model file {path} missing"}
    y = target_values(split.holdout, request.target).to_numpy()
    unseen_courses = set(split.holdout_courses) - seen_courses
    rows = split.holdout["course_id"].isin(unseen_courses).to_numpy()
    if len(np.unique(y[rows])) == 2:
        twin = fitted["judged"] if unseen_courses == set(split.holdout_courses) else CatBoostScorer.fit(
            data[~data["course_id"].isin(unseen_courses)], request.target, request.iterations
        )
        note = "held-out courses the default never learned from, against a twin fitted without them"
    else:
        rows, twin, note = np.ones(len(y), dtype=bool), fitted["deployed"], "the whole holdout, which both learned from"
    compared = split.holdout[rows]
    auc = lambda scorer: classification_metrics(y[rows], scorer.predict_proba(compared), THRESHOLD)["roc_auc"]  # noqa: E731
    return {
        "model_name": champion["model_name"],
        "model_version": champion["model_version"],
        "roc_auc": auc(CatBoostScorer.load(path)),
        "challenger_roc_auc": auc(twin),
        "compared_on": sorted(compared["course_id"].unique()),
        "note": note,
    }


def _one_class(rows: pd.DataFrame, target: str, side: str) -> str | None:
    values = target_values(rows, target)
    if values.nunique() == 2:
        return None
    outcome = OUTCOME_WORDS[target][int(values.iloc[0])] if len(values) else "absent"
    courses = rows["course_id"].nunique()
    return (
        f"every one of the {len(values)} {side} rows ({courses} course{'s' if courses != 1 else ''}) is '{outcome}': "
        f"a {target}-risk model needs both outcomes to learn from and to be judged on"
    )


def trainable_split(data: pd.DataFrame, target: str) -> Split:
    """The holdout split, or CannotTrain saying in words why no honest model can come of it."""
    if data.empty:
        raise CannotTrain("training_data is empty: no finished course has been frozen yet")
    try:
        split = holdout_split(data)
    except ValueError as error:
        raise CannotTrain(str(error)) from None
    if len(split.train) < MIN_TRAINING_ROWS:
        raise CannotTrain(f"only {len(split.train)} training rows (at least {MIN_TRAINING_ROWS} are needed) once whole courses are held out")
    problem = _one_class(split.train, target, "training") or _one_class(split.holdout, target, f"held-out ({', '.join(split.holdout_courses)})")
    if problem:
        raise CannotTrain(problem)
    return split


def retrain(engine: sa.Engine, request: RetrainRequest) -> RetrainResult:
    """Fit, evaluate, register and gate a new version; CannotTrain (nothing registered) when
    the data cannot give an honest model."""
    with engine.connect() as connection:
        data = ordered(read_training_data(connection, request.course_ids))  # row order never changes a result
        champion = model_tables.default_model(connection, request.target) if request.domain == "all" else model_tables.latest_active(connection, request.model_name)
        seen = model_tables.courses_learned_by(connection, champion["model_name"], champion["model_version"]) if champion else set()
    try:
        split = trainable_split(data, request.target)
    except CannotTrain as reason:
        serving = f"{model_tables.model_label(champion)} keeps serving" if champion else f"no {request.target}-risk model serves yet"
        raise CannotTrain(f"{reason}; {serving}") from None
    y_holdout = target_values(split.holdout, request.target)
    y_train = target_values(split.train, request.target).to_numpy()

    # Calibrated on the training courses' out-of-fold predictions: the holdout stays unseen.
    train_oof = out_of_fold(split.train, y_train, lambda fit, rows: CatBoostScorer.fit(fit, request.target, request.iterations).raw_proba(rows))
    judged = CatBoostScorer.fit(split.train, request.target, request.iterations)
    judged = judged.calibrated(PlattCalibration.fit(train_oof, y_train) if train_oof is not None else None)
    judged_raw_p, judged_p = judged.raw_proba(split.holdout), judged.predict_proba(split.holdout)
    evaluations = {
        "catboost": evaluation_rows(split.holdout, y_holdout, judged_p, THRESHOLD),
        "logistic_regression": evaluation_rows(split.holdout, y_holdout, fit_logistic_baseline(split.train, request.target)(split.holdout), THRESHOLD),
        "rule_grade_activity": evaluation_rows(split.holdout, y_holdout, rule_baseline(split.holdout), THRESHOLD),
    }
    # The deployed model's calibration learns from every out-of-sample prediction there is.
    deployed_calibration = (
        PlattCalibration.fit(np.concatenate([train_oof, judged_raw_p]), np.concatenate([y_train, y_holdout.to_numpy()]))
        if train_oof is not None else None
    )
    deployed = CatBoostScorer.fit(data, request.target, request.iterations).calibrated(deployed_calibration)
    calibration = {
        "method": "platt" if deployed.calibration else "none: too few courses, a fold with one outcome, or no signal out of fold",
        "deployed": dataclasses.asdict(deployed.calibration) if deployed.calibration else None,
        "holdout_ece_raw": expected_calibration_error(y_holdout.to_numpy(), judged_raw_p),  # calibrated: evaluations' calibration_error
        "holdout_reliability": reliability_table(y_holdout.to_numpy(), judged_p),
    }
    comparison = _champion_comparison(champion, seen, data, split, {"judged": judged, "deployed": deployed}, request)

    auc = evaluations["catboost"][0]["roc_auc"]
    passed_floor = auc is not None and auc >= request.auc_floor
    champion_auc = comparison["roc_auc"] if comparison else None
    passed_champion = auc is not None and (champion_auc is None or comparison["challenger_roc_auc"] >= champion_auc - request.champion_margin)

    now = _now()
    with engine.begin() as connection:
        version = model_tables.next_version(connection, request.model_name)
        path = request.models_dir / request.model_name / f"v{version}.cbm"
        deployed.save(path)
        promoted = passed_floor and passed_champion
        model_tables.register_model(
            connection,
            {
                "model_name": request.model_name,
                "model_version": version,
                "target": request.target,
                "model_path": str(path.resolve()),
                "features": deployed.features,
                "model_type": "CatBoostClassifier",
                "domain": request.domain,
                "trained_at": now,
                "training_rows": len(data),
                "holdout_courses": list(split.holdout_courses),
                "metrics": _json_safe(evaluations["catboost"][0]),
                "is_active": promoted,
                "is_default": False,
            },
        )
        model_tables.record_performance(
            connection,
            [
                {"model_name": request.model_name, "model_version": version, "scorer": scorer_name, "evaluated_at": now, **row}
                for scorer_name, rows in evaluations.items()
                for row in rows
            ],
        )
        model_tables.mark_training_rows_used(connection, data["id"], request.model_name, version, now)
        if promoted and request.domain == "all":
            model_tables.promote_to_default(connection, request.model_name, version, request.target)
        if promoted and request.course_ids:
            model_tables.map_courses(connection, request.course_ids, request.model_name, now)

    return RetrainResult(
        model_name=request.model_name,
        model_version=version,
        model_path=path,
        training_rows=len(data),
        holdout_courses=split.holdout_courses,
        split_strategy=split.strategy,
        evaluations=evaluations,
        feature_importance=deployed.feature_importance(),
        champion=comparison,
        calibration=calibration,
        passed_floor=passed_floor,
        passed_champion=passed_champion,
        promoted=promoted,
    )


def _json_safe(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
