"""Retraining: learn from training_data, choose a candidate honestly, register, gate.

Every candidate kind (modeling.scorers.CANDIDATES: CatBoost set up for small data, a
logistic regression, their blend, made of the two fits, and a class-weighted random
forest) is fitted on the training courses and judged on the held-out ones.
The one chosen is the best at early warning, the point of the product: the highest mean
of its per-week ROC AUC over weeks 1 to 4 (pooled AUC is dominated by late weeks, where
anything works), measured on the training courses' course-grouped out-of-fold predictions,
never on the held-out courses the gate then judges it on: the best of several candidates
on the gate's own courses is the best partly by luck there, and the more candidates, the
more its AUC there flatters it (the winner's curse). Then the chosen kind is refitted on
every frozen row, so a course that has just finished (the most recent semester, the one
most like what comes next) improves the very next model instead of only judging it; both
the judged ("evaluated") and the refitted ("deployed") artifacts are saved. Scores are
calibrated (modeling.calibration): the judged model from its training courses'
out-of-fold predictions, the deployed one from every out-of-sample prediction there is.

Each version is registered and every candidate's evaluation recorded (the history behind
trend charts), its selection AUC beside the held-out one. The version number is taken by
inserting its registry row, in a short transaction of its own that the registry's unique
key makes atomic (a retrain that lost the number to another takes the next), before any
file is written; the files are written under a private name and renamed into place, so
two retrains of one model at once never share a version or a file. The version becomes
the default only when it passes the gate: holdout ROC AUC at least the floor, and,
against the current default, not worse by more than the margin at early warning,
compared only on finished courses neither model learned from (see _incumbent_comparison).
Its `training_rows` is every row it learned from, so rows frozen since (the table only
grows) are what is new to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.features.calendar import day_of_course_week
from dropout_pipeline.modeling.calibration import PlattCalibration, out_of_fold
from dropout_pipeline.modeling.metrics import classification_metrics, evaluation_rows, expected_calibration_error, reliability_table
from dropout_pipeline.modeling.scorers import CANDIDATES, BlendScorer, Scorer, load_scorer, ordered, rule_baseline, target_values
from dropout_pipeline.modeling.split import Split, holdout_split
from dropout_pipeline.storage import model_tables
from dropout_pipeline.storage.feature_tables import read_training_data

THRESHOLD = 0.5
MIN_TRAINING_ROWS = 100
EARLY_WEEKS = (1, 2, 3, 4)  # the weeks a model is chosen and gated on
RULE = "rule_grade_activity"
# With a single training course nothing can be predicted by a fit that did not learn its
# course, so there is nothing to choose on apart from the gate's courses: the blend is
# deployed (steadier than either of its members where data is scarce), else the first listed.
WITHOUT_SELECTION = "blend"
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
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    catboost_iterations: int | None = None  # None: chosen by early stopping on a course-grouped fold

    def fit_settings(self, candidate: str) -> dict:
        return {"iterations": self.catboost_iterations} if candidate == "catboost" and self.catboost_iterations else {}


@dataclass
class Candidate:
    """One kind of model, fitted on the training courses, chosen (or not) on their
    out-of-fold predictions, and judged on the held-out courses."""

    name: str
    judged: Scorer  # calibrated from the training courses' out-of-fold predictions
    train_oof: np.ndarray | None  # what calibration learns from (three training courses or more)
    holdout_raw: np.ndarray
    evaluation: list[dict]  # on the held-out courses: what the gate judges
    selection_raw: np.ndarray | None = None  # each training row predicted by a fit without its course
    selection: list[dict] = field(default_factory=list)  # on the training courses: what the choice is made on

    @property
    def early_auc(self) -> float | None:
        """Early-warning ROC AUC on the held-out courses (the gate's)."""
        return early_warning_auc(self.evaluation)

    @property
    def selection_auc(self) -> float | None:
        """Early-warning ROC AUC on the training courses' out-of-fold predictions (the choice's)."""
        return early_warning_auc(self.selection) if self.selection else None


@dataclass
class RetrainResult:
    model_name: str
    model_version: int
    model_path: Path
    evaluated_model_path: Path
    chosen: str  # the candidate kind deployed
    training_rows: int
    holdout_courses: tuple[str, ...]
    split_strategy: str
    evaluations: dict[str, list[dict]]  # candidate or baseline -> rows on the held-out courses (overall, per week, per course)
    feature_importance: dict[str, float]
    by_week_day: dict[int, dict]  # the chosen candidate's held-out metrics by day of the course week
    selected_on: tuple[str, ...] = ()  # the training courses the candidate was chosen on (none: not chosen on data)
    selection_strategy: str = ""
    selections: dict[str, list[dict]] = field(default_factory=dict)  # candidate or baseline -> rows on the training courses (empty: none)
    champion: dict | None = None  # the default it was compared to: both early-warning ROC AUCs, per week, and the courses
    calibration: dict = field(default_factory=dict)  # the map deployed, and ECE before/after on the holdout with its reliability table
    passed_floor: bool = False
    passed_champion: bool = False
    promoted: bool = False

    def overall(self, scorer: str | None = None) -> dict:
        return self.evaluations[scorer or self.chosen][0]

    def per_week(self, scorer: str | None = None) -> list[dict]:
        return weekly_rows(self.evaluations[scorer or self.chosen])

    def early_auc(self, scorer: str | None = None) -> float | None:
        """Early-warning ROC AUC on the held-out courses: what the gate judges."""
        return early_warning_auc(self.evaluations[scorer or self.chosen])

    def selection_auc(self, scorer: str | None = None) -> float | None:
        """Early-warning ROC AUC on the training courses' out-of-fold predictions: what the choice was made on."""
        rows = self.selections.get(scorer or self.chosen)
        return early_warning_auc(rows) if rows else None

    def selection_overall(self, scorer: str | None = None) -> dict | None:
        rows = self.selections.get(scorer or self.chosen)
        return rows[0] if rows else None


def weekly_rows(evaluation: list[dict]) -> list[dict]:
    """An evaluation's rows of all held-out courses, one per course week (see metrics.evaluation_rows)."""
    return [row for row in evaluation if row["course_id"] == "all" and row["snapshot_week"] is not None]


def early_warning_auc(rows: list[dict]) -> float | None:
    """Mean of the per-week ROC AUCs over weeks 1 to 4 (those with both outcomes): each
    week counts the same, however many rows it has."""
    values = [row["roc_auc"] for row in weekly_rows(rows) if row["snapshot_week"] in EARLY_WEEKS and row["roc_auc"] is not None]
    return float(np.mean(values)) if values else None


def evaluated_artifact(model_path: Path) -> Path:
    """Where the judged twin of a deployed model is kept: beside it, `vN.evaluated.<kind>`."""
    return model_path.with_name(f"{model_path.stem}.evaluated{model_path.suffix}")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _evaluate_candidates(split: Split, request: RetrainRequest) -> list[Candidate]:
    """Every requested candidate, fitted and judged; a blend is made of its members'
    fits (those requested, or fitted for it), not fitted again."""
    evaluated: dict[str, Candidate] = {}

    def candidate(name: str) -> Candidate:
        if name not in evaluated:
            kind = CANDIDATES[name]
            members = getattr(kind, "member_candidates", None)
            evaluated[name] = _evaluate_blend(name, [candidate(m) for m in members], split, request) if members else _evaluate(name, split, request)
        return evaluated[name]

    return [candidate(name) for name in request.candidates]


def _combined(predictions: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(p is None for p in predictions) else BlendScorer.combine(predictions)


def _evaluate_blend(name: str, members: list[Candidate], split: Split, request: RetrainRequest) -> Candidate:
    """The blend of its members' fits, out-of-fold and held-out predictions: nothing fitted again."""
    oof = _combined([member.train_oof for member in members])
    selection_raw = _combined([member.selection_raw for member in members])
    holdout_raw = BlendScorer.combine([member.holdout_raw for member in members])
    return _judge(name, BlendScorer.of([member.judged for member in members]), oof, selection_raw, holdout_raw, split, request.target)


def _evaluate(name: str, split: Split, request: RetrainRequest) -> Candidate:
    kind, target = CANDIDATES[name], request.target
    y_train = target_values(split.train, target).to_numpy()
    model = kind.fit(split.train, target, **request.fit_settings(name))
    refit = lambda fit, rows: kind.fit(fit, target, **model.refit_settings()).raw_proba(rows)  # noqa: E731
    oof = out_of_fold(split.train, y_train, refit)
    return _judge(name, model, oof, _selection_predictions(split.train, y_train, oof, refit), model.raw_proba(split.holdout), split, target)


def _selection_predictions(train: pd.DataFrame, y_train: np.ndarray, oof: np.ndarray | None, refit) -> np.ndarray | None:
    """Each training row's raw prediction by a fit that did not learn its course, to choose on.

    With three training courses or more these are calibration's out-of-fold predictions,
    reused: nothing more is fitted. With two, calibration has none (a fit of one course
    predicts unlike a fit of many, and a map learned from it made scores worse), but a
    ranking is all a choice needs, so each course is predicted by a fit on the other. With
    one (or a side with a single outcome), None: nothing to choose on.
    """
    if oof is not None:
        return oof
    courses = train["course_id"].to_numpy()
    if len(np.unique(courses)) != 2:
        return None
    predictions = np.empty(len(train))
    for course in np.unique(courses):
        held = courses == course
        if len(np.unique(y_train[~held])) < 2:
            return None
        predictions[held] = refit(train[~held], train[held])
    return predictions


def _judge(
    name: str, model: Scorer, train_oof: np.ndarray | None, selection_raw: np.ndarray | None, holdout_raw: np.ndarray, split: Split, target: str
) -> Candidate:
    """A fitted candidate calibrated from its training courses' out-of-fold predictions
    (where there are), measured on them for the choice, and evaluated on the held-out
    courses for the gate."""
    y_train = target_values(split.train, target).to_numpy()
    judged = model.calibrated(PlattCalibration.fit(train_oof, y_train) if train_oof is not None else None)
    probability = judged.calibration(holdout_raw) if judged.calibration else holdout_raw
    evaluation = evaluation_rows(split.holdout, target_values(split.holdout, target), probability, THRESHOLD)
    # ROC AUC needs no calibration (a map fitted on these very predictions would only shift the other metrics).
    selection = evaluation_rows(split.train, y_train, selection_raw, THRESHOLD) if selection_raw is not None else []
    return Candidate(name, judged, train_oof, holdout_raw, evaluation, selection_raw, selection)


def _choose(candidates: list[Candidate]) -> Candidate:
    """The best at early warning on the training courses' out-of-fold predictions, never on
    the held-out courses the gate judges it on; on a tie, the first listed. With nothing to
    choose on (a single training course, or no early week with both outcomes), the blend
    when it is a candidate, else the first listed."""
    scored = [c for c in candidates if c.selection_auc is not None]
    if scored:
        return max(scored, key=lambda c: c.selection_auc)
    return next((c for c in candidates if c.name == WITHOUT_SELECTION), candidates[0])


def _selection_strategy(candidates: list[Candidate], split: Split) -> str:
    courses = split.train["course_id"].nunique()
    if any(c.selection_auc is not None for c in candidates):
        how = "course-grouped out-of-fold predictions" if any(c.train_oof is not None for c in candidates) else "each course predicted by a fit on the other"
        return f"early-warning ROC AUC on the {courses} training courses ({how}); the held-out courses only judge"
    return f"not chosen on data: {courses} training course{'s' if courses != 1 else ''} gave no out-of-fold prediction with early weeks; the default kind"


def _by_week_day(holdout: pd.DataFrame, y: np.ndarray, probability: np.ndarray) -> dict[int, dict]:
    """ROC AUC by day of the course week (1, 4, 7): a model trained for any day must not
    be worse on the first day of a week than on its last."""
    days = day_of_course_week(holdout["course_day"].to_numpy())
    out = {}
    for day in sorted(np.unique(days)):
        mask = days == day
        out[int(day)] = {
            "n_samples": int(mask.sum()),
            "roc_auc": classification_metrics(y[mask], probability[mask], THRESHOLD)["roc_auc"],
            "early_weeks_roc_auc": early_warning_auc(evaluation_rows(holdout[mask], y[mask], probability[mask], THRESHOLD)),
        }
    return out


def _incumbent_comparison(incumbent: dict | None, seen: set[str], data: pd.DataFrame, split: Split, chosen: Candidate, target: str) -> dict | None:
    """The current default and the new model, at early warning, on the finished courses
    the default never learned from (those frozen since it was trained), week by week.

    The new model is compared through a twin that did not learn from them either: the
    judged model when they are the held-out courses, else the same kind refitted without
    them. With no such course (nothing new since the default), nothing is compared and the
    default keeps serving.
    """
    if incumbent is None:
        return None
    label = {"model_name": incumbent["model_name"], "model_version": incumbent["model_version"]}
    path = Path(incumbent["model_path"])
    if not path.exists():  # nothing can be compared, and nothing can serve: the new model may
        return {**label, "roc_auc": None, "compared": False, "serving": False, "note": f"the default's model file {path} is missing"}
    compared_on = sorted(set(data["course_id"]) - seen)
    rows = data[data["course_id"].isin(compared_on)]
    y = target_values(rows, target).to_numpy()
    if len(np.unique(y)) < 2:
        return {**label, "roc_auc": None, "compared": False, "compared_on": compared_on, "note": (
            "no finished course the default has not learned from (with both outcomes): nothing to compare on, the default keeps serving"
        )}
    if set(compared_on) == set(split.holdout_courses):
        twin = chosen.judged
    else:
        kind = CANDIDATES[chosen.name]
        twin = kind.fit(data[~data["course_id"].isin(compared_on)], target, **chosen.judged.refit_settings()).calibrated(chosen.judged.calibration)
    evaluations = {name: evaluation_rows(rows, y, model.predict_proba(rows), THRESHOLD) for name, model in (("default", load_scorer(path)), ("new", twin))}
    per_week = {
        old["snapshot_week"]: {"n": old["n_samples"], "default": old["roc_auc"], "new": new["roc_auc"]}
        for old, new in zip(weekly_rows(evaluations["default"]), weekly_rows(evaluations["new"]), strict=True)
    }
    early = {name: early_warning_auc(rows_) for name, rows_ in evaluations.items()}
    pooled = any(value is None for value in early.values())
    score = {name: (evaluations[name][0]["roc_auc"] if pooled else early[name]) for name in evaluations}
    return {
        **label,
        "roc_auc": score["default"],
        "challenger_roc_auc": score["new"],
        "compared": True,
        "measure": "ROC AUC of all weeks (no early week had both outcomes)" if pooled else f"mean ROC AUC of weeks {EARLY_WEEKS[0]}-{EARLY_WEEKS[-1]}",
        "per_week": per_week,
        "compared_on": compared_on,
        "note": "courses neither model learned from" + ("" if twin is chosen.judged else ", against a twin fitted without them"),
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
    """Fit every candidate, choose, refit the chosen on all rows, register and gate a new
    version; CannotTrain (nothing registered) when the data cannot give an honest model."""
    with engine.connect() as connection:
        data = ordered(read_training_data(connection, request.course_ids))  # row order never changes a result
        incumbent = model_tables.default_model(connection, request.target) if request.domain == "all" else model_tables.latest_active(connection, request.model_name)
        seen = model_tables.courses_learned_by(connection, incumbent["model_name"], incumbent["model_version"]) if incumbent else set()
    try:
        split = trainable_split(data, request.target)
    except CannotTrain as reason:
        serving = f"{model_tables.model_label(incumbent)} keeps serving" if incumbent else f"no {request.target}-risk model serves yet"
        raise CannotTrain(f"{reason}; {serving}") from None
    y_holdout = target_values(split.holdout, request.target).to_numpy()
    y_train = target_values(split.train, request.target).to_numpy()

    candidates = _evaluate_candidates(split, request)
    chosen = _choose(candidates)
    evaluations = {c.name: c.evaluation for c in candidates}
    evaluations[RULE] = evaluation_rows(split.holdout, y_holdout, rule_baseline(split.holdout), THRESHOLD)

    # The deployed model's calibration learns from every out-of-sample prediction there is:
    # the held-out courses' always, the training courses' where they could be cross-fitted.
    with_oof = chosen.train_oof is not None
    deployed_calibration = PlattCalibration.fit(
        np.concatenate([chosen.train_oof, chosen.holdout_raw]) if with_oof else chosen.holdout_raw,
        np.concatenate([y_train, y_holdout]) if with_oof else y_holdout,
    )
    deployed = CANDIDATES[chosen.name].fit(data, request.target, **chosen.judged.refit_settings()).calibrated(deployed_calibration)
    calibration = {
        "method": "platt" if deployed.calibration else "none: no signal out of sample",
        "judged_calibrated": chosen.judged.calibration is not None,  # not with fewer than three training courses
        "deployed": dataclasses.asdict(deployed.calibration) if deployed.calibration else None,
        "holdout_ece_raw": expected_calibration_error(y_holdout, chosen.holdout_raw),  # calibrated: evaluations' calibration_error
        "holdout_reliability": reliability_table(y_holdout, chosen.judged.predict_proba(split.holdout)),
    }
    comparison = _incumbent_comparison(incumbent, seen, data, split, chosen, request.target)

    auc = chosen.evaluation[0]["roc_auc"]
    passed_floor = auc is not None and auc >= request.auc_floor
    passed_champion = comparison is None or not comparison.get("serving", True) or (
        comparison["compared"] and comparison["challenger_roc_auc"] >= comparison["roc_auc"] - request.champion_margin
    )

    promoted = passed_floor and passed_champion
    selections = {c.name: c.selection for c in candidates if c.selection}
    if selections:  # the rule on the same rows, for scale (it learns nothing, so nothing is held out from it)
        selections[RULE] = evaluation_rows(split.train, y_train, rule_baseline(split.train), THRESHOLD)
    now = _now()
    folder = request.models_dir / request.model_name
    registration = {
        "model_name": request.model_name,
        "target": request.target,
        "features": deployed.features,
        "model_type": deployed.model_type,
        "domain": request.domain,
        "trained_at": now,
        "training_rows": len(data),
        "holdout_courses": list(split.holdout_courses),
        "metrics": _json_safe({
            **chosen.evaluation[0],
            "candidate": chosen.name,
            "early_weeks_roc_auc": {c.name: c.early_auc for c in candidates},  # on the held-out courses: the gate's
            "selection_early_weeks_roc_auc": {c.name: c.selection_auc for c in candidates},  # on the training courses: the choice's
            "selected_on": sorted(split.train["course_id"].unique()) if selections else [],
        }),
    }
    version = model_tables.claim_version(engine, registration, lambda v: str((folder / f"v{v}{deployed.suffix}").resolve()))
    path = folder / f"v{version}{deployed.suffix}"
    try:
        _save_artifacts(path, deployed, chosen.judged)
        with engine.begin() as connection:
            model_tables.record_performance(connection, [
                {"model_name": request.model_name, "model_version": version, "evaluated_at": now, **row}
                for row in _performance_rows(evaluations, selections)
            ])
            model_tables.mark_training_rows_used(connection, data["id"], request.model_name, version, now)
            model_tables.complete_version(connection, request.model_name, version, is_active=promoted)
            if promoted and request.domain == "all":
                model_tables.promote_to_default(connection, request.model_name, version, request.target)
            if promoted and request.course_ids:
                model_tables.map_courses(connection, request.course_ids, request.model_name, now)
    except BaseException:
        with contextlib.suppress(Exception):  # the failure that got here is the one to report
            _remove_artifacts(path)
            model_tables.release_version(engine, request.model_name, version)
        raise

    return RetrainResult(
        model_name=request.model_name,
        model_version=version,
        model_path=path,
        evaluated_model_path=evaluated_artifact(path),
        chosen=chosen.name,
        training_rows=len(data),
        holdout_courses=split.holdout_courses,
        split_strategy=split.strategy,
        evaluations=evaluations,
        feature_importance=deployed.feature_importance(),
        by_week_day=_by_week_day(split.holdout, y_holdout, chosen.judged.predict_proba(split.holdout)),
        selected_on=tuple(sorted(split.train["course_id"].unique())) if selections else (),
        selection_strategy=_selection_strategy(candidates, split),
        selections=selections,
        champion=comparison,
        calibration=calibration,
        passed_floor=passed_floor,
        passed_champion=passed_champion,
        promoted=promoted,
    )


def _performance_rows(evaluations: dict[str, list[dict]], selections: dict[str, list[dict]]) -> list[dict]:
    """Every scorer's rows on the held-out courses (what the gate judges), each of all courses
    with the same scorer and week on the training courses' out-of-fold predictions beside it
    (what the choice was made on). A held-out course's own row has none: no choice was made on it."""
    rows = []
    for scorer, evaluation in evaluations.items():
        chosen_on = {row["snapshot_week"]: row for row in selections.get(scorer, []) if row["course_id"] == "all"}
        for row in evaluation:
            beside = chosen_on.get(row["snapshot_week"]) if row["course_id"] == "all" else None
            rows.append({
                "scorer": scorer, **row,
                "selection_roc_auc": beside["roc_auc"] if beside else None,
                "selection_n_samples": beside["n_samples"] if beside else None,
            })
    return rows


def _save_artifacts(path: Path, deployed: Scorer, judged: Scorer) -> None:
    """The deployed model at `path` and the judged one beside it (evaluated_artifact), with
    their sidecars: each saved in a private folder beside them, then renamed into place (a
    rename within a file system is atomic), so a file under a version's name is only ever
    whole, and only the retrain that claimed the version writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}-", dir=path.parent))
    try:
        deployed.save(staging / path.name)
        judged.save(staging / evaluated_artifact(path).name)
        for file in sorted(staging.iterdir()):
            os.replace(file, path.parent / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_artifacts(path: Path) -> None:
    """Every file of the version `path` names (`vN.*`, and a blend's members `vN-*`)."""
    for file in [*path.parent.glob(f"{path.stem}.*"), *path.parent.glob(f"{path.stem}-*")]:
        file.unlink(missing_ok=True)


def _json_safe(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
