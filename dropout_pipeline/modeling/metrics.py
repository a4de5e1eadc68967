"""Classification metrics, always with their sample sizes; undefined ones are None."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
from sklearn import metrics as skm

CALIBRATION_BINS = 10
# The share of a course a teacher can follow up each week: the worklist is its riskiest
# learners. A course can set its own (course_model_mapping.worklist_share).
WORKLIST_SHARE = 0.10


def worklist_size(learners: int, share: float | Fraction = WORKLIST_SHARE) -> int:
    """How many of `learners` a worklist holds: its `share` rounded up (at least one, at most
    all). The one rule for the teacher's list (predictions.queries, the web app) and the
    evaluation's.

    Exact: the share is taken as the decimal it was written as (str of a float is the
    shortest one that reads back as it), so 7% of 100 learners is 7. On doubles
    `ceil(0.07 * 100)` is ceil(7.000000000000001), 8."""
    if not learners:
        return 0
    exact = share if isinstance(share, Fraction) else Fraction(str(share))
    return min(learners, max(1, math.ceil(exact * learners)))


def worklist_metrics(y_true: np.ndarray, probability: np.ndarray, lists: np.ndarray, share: float = WORKLIST_SHARE) -> dict:
    """Precision and recall of worklists: within each list (one course on one date), its
    riskiest `share` of learners are flagged; pooled over the lists."""
    y, p = np.asarray(y_true, dtype=int), np.asarray(probability, dtype=float)
    _, on_list, list_sizes = np.unique(np.asarray(lists), return_inverse=True, return_counts=True)
    order = np.lexsort((-p, on_list))  # by list, the riskiest first within it (ties: row order)
    first_of_list = np.concatenate(([0], np.cumsum(list_sizes)[:-1]))
    place = np.arange(len(y)) - first_of_list[on_list[order]]  # 0 = the riskiest of its list
    lengths = np.array([worklist_size(int(n), share) for n in list_sizes], dtype=int)
    flagged = np.zeros(len(y), dtype=bool)
    flagged[order[place < lengths[on_list[order]]]] = True
    positives = int(y.sum())
    return {
        "worklist_share": share,
        "worklist_precision": float(y[flagged].mean()) if flagged.any() else None,
        "worklist_recall": float(y[flagged].sum() / positives) if positives else None,
    }


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


def worklist_keys(rows: pd.DataFrame) -> np.ndarray:
    """Which worklist each row is on: its course and snapshot date, as a teacher gets them (a
    course's days 1, 4 and 7 of a week are three lists, not one of three times the size)."""
    return rows.groupby(["course_id", "snapshot_date"], sort=False, dropna=False).ngroup().to_numpy()


def evaluation_rows(holdout: pd.DataFrame, y_true: pd.Series, probability: np.ndarray, threshold: float) -> list[dict]:
    """Metrics for all held-out rows, per snapshot week, and per held-out course; worklists
    are drawn per course and snapshot date (worklist_keys) and pooled within each row."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probability, dtype=float)
    weeks, courses = holdout["snapshot_week"].to_numpy(), holdout["course_id"].to_numpy()
    lists = worklist_keys(holdout)

    def row(course: str, week: int | None, mask: np.ndarray) -> dict:
        return {"course_id": course, "snapshot_week": week, **classification_metrics(y[mask], p[mask], threshold),
                **worklist_metrics(y[mask], p[mask], lists[mask])}

    rows = [row("all", None, np.ones(len(y), dtype=bool))]
    rows += [row("all", int(week), weeks == week) for week in sorted(np.unique(weeks))]
    rows += [row(str(course), None, courses == course) for course in sorted(np.unique(courses))]
    return rows
