"""Classification metrics, always with their sample sizes; undefined ones are None."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

CALIBRATION_BINS = 10


def reliability_table(y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per bin of predicted risk (equal widths): how many rows, the mean predicted risk and
    the observed rate."""
    y, p = np.asarray(y_true, dtype=int), np.asarray(probability, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    return [
        {"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int((index == b).sum()),
         "mean_predicted": float(p[index == b].mean()), "observed_rate": float(y[index == b].mean())}
        for b in range(bins) if (index == b).any()
    ]


def expected_calibration_error(y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Mean gap between predicted risk and observed rate, weighted by bin size."""
    table = reliability_table(y_true, probability, bins)
    total = sum(row["n"] for row in table)
    return float(sum(abs(row["mean_predicted"] - row["observed_rate"]) * row["n"] / total for row in table))


def classification_metrics(y_true, probability, threshold: float) -> dict:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    predicted = (p >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    tn, fp, fn, tp = skm.confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    return {
        "n_samples": int(len(y)),
        "n_positive": int(y.sum()),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both_classes else None,
        "pr_auc": float(skm.average_precision_score(y, p)) if both_classes else None,
        "accuracy": float(skm.accuracy_score(y, predicted)) if len(y) else None,
        "precision_score": float(skm.precision_score(y, predicted, zero_division=0)),
        "recall_score": float(skm.recall_score(y, predicted, zero_division=0)),
        "f1_score": float(skm.f1_score(y, predicted, zero_division=0)),
        "brier_score": float(skm.brier_score_loss(y, p)) if len(y) else None,
        "calibration_error": expected_calibration_error(y, p) if len(y) else None,
        "threshold": threshold,
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def evaluation_rows(holdout: pd.DataFrame, y_true: pd.Series, probability: np.ndarray, threshold: float) -> list[dict]:
    """Metrics for all held-out rows, per snapshot week, and per held-out course."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    rows = [{"course_id": "all", "snapshot_week": None, **classification_metrics(y, p, threshold)}]
    weeks = holdout["snapshot_week"].to_numpy()
    for week in sorted(np.unique(weeks)):
        mask = weeks == week
        rows.append({"course_id": "all", "snapshot_week": int(week), **classification_metrics(y[mask], p[mask], threshold)})
    courses = holdout["course_id"].to_numpy()
    for course in sorted(np.unique(courses)):
        mask = courses == course
        rows.append({"course_id": str(course), "snapshot_week": None, **classification_metrics(y[mask], p[mask], threshold)})
    return rows
