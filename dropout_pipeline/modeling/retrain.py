"""Retraining: learn from training_data, prove it on held-out courses, register, gate.

A new version is always registered and its evaluation recorded (the history behind
trend charts); it becomes the default only when it passes the gate: ROC AUC on the
holdout at least the floor, and not worse than the current default *on the same
holdout* by more than the margin (champion/challenger).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.modeling.metrics import evaluation_rows
from dropout_pipeline.modeling.scorers import CatBoostScorer, fit_logistic_baseline, rule_baseline, target_values
from dropout_pipeline.modeling.split import holdout_split
from dropout_pipeline.storage import model_tables
from dropout_pipeline.storage.feature_tables import read_training_data

THRESHOLD = 0.5


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
    champion: dict | None = None  # {"model_version", "roc_auc"} of the default it was compared to
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


def _champion_auc(champion: dict | None, holdout: pd.DataFrame, target: str) -> dict | None:
    if champion is None:
        return None
    path = Path(champion["model_path"])
    if not path.exists():
        return {"model_version": champion["model_version"], "roc_auc": None, "note": f"model file {path} missing"}
    scorer = CatBoostScorer.load(path)
    rows = evaluation_rows(holdout, target_values(holdout, target), scorer.predict_proba(holdout), THRESHOLD)
    return {"model_name": champion["model_name"], "model_version": champion["model_version"], "roc_auc": rows[0]["roc_auc"]}


def retrain(engine: sa.Engine, request: RetrainRequest) -> RetrainResult:
    with engine.connect() as connection:
        data = read_training_data(connection, request.course_ids)
        champion = model_tables.default_model(connection, request.target) if request.domain == "all" else model_tables.latest_active(connection, request.model_name)
    if data.empty:
        raise ValueError("training_data is empty: freeze finished courses (training_data asset) before training")
    split = holdout_split(data)
    y_holdout = target_values(split.holdout, request.target)

    scorer = CatBoostScorer.fit(split.train, request.target, request.iterations)
    evaluations = {
        "catboost": evaluation_rows(split.holdout, y_holdout, scorer.predict_proba(split.holdout), THRESHOLD),
        "logistic_regression": evaluation_rows(split.holdout, y_holdout, fit_logistic_baseline(split.train, request.target)(split.holdout), THRESHOLD),
        "rule_grade_activity": evaluation_rows(split.holdout, y_holdout, rule_baseline(split.holdout), THRESHOLD),
    }
    champion_result = _champion_auc(champion, split.holdout, request.target)

    auc = evaluations["catboost"][0]["roc_auc"]
    passed_floor = auc is not None and auc >= request.auc_floor
    champion_auc = champion_result["roc_auc"] if champion_result else None
    passed_champion = auc is not None and (champion_auc is None or auc >= champion_auc - request.champion_margin)

    now = _now()
    with engine.begin() as connection:
        version = model_tables.next_version(connection, request.model_name)
        path = request.models_dir / request.model_name / f"v{version}.cbm"
        scorer.save(path)
        promoted = passed_floor and passed_champion
        model_tables.register_model(
            connection,
            {
                "model_name": request.model_name,
                "model_version": version,
                "target": request.target,
                "model_path": str(path.resolve()),
                "features": scorer.features,
                "model_type": "CatBoostClassifier",
                "domain": request.domain,
                "trained_at": now,
                "training_rows": len(split.train),
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
        model_tables.mark_training_rows_used(connection, split.train["id"], request.model_name, version, now)
        if promoted and request.domain == "all":
            model_tables.promote_to_default(connection, request.model_name, version, request.target)
        if promoted and request.course_ids:
            model_tables.map_courses(connection, request.course_ids, request.model_name, now)

    return RetrainResult(
        model_name=request.model_name,
        model_version=version,
        model_path=path,
        training_rows=len(split.train),
        holdout_courses=split.holdout_courses,
        split_strategy=split.strategy,
        evaluations=evaluations,
        feature_importance=scorer.feature_importance(),
        champion=champion_result,
        passed_floor=passed_floor,
        passed_champion=passed_champion,
        promoted=promoted,
    )


def _json_safe(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
