"""Risk scores a teacher can read as probabilities: Platt scaling fitted out of sample.

A boosted model's raw probabilities are sharp where it is confident and saturate (the
top of every list read 100.0, so it did not rank). A Platt map (a logistic regression on
the raw log-odds) is fitted on predictions the model made for courses it did not learn
from, here from a course-grouped cross-fit, so the scores mean what they say on new
courses. Platt rather than isotonic: it is strictly increasing, so it keeps the model's
ranking and adds no ties (a map that would reverse it is refused), and its two numbers
need little data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

CROSS_FIT_FOLDS = 3
EDGE = 1e-12  # raw probabilities are clipped this far from 0 and 1 before taking log-odds (never binding in practice)


def log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), EDGE, 1 - EDGE)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class PlattCalibration:
    slope: float
    intercept: float

    def __call__(self, probability: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.slope * log_odds(probability) + self.intercept)))

    @classmethod
    def fit(cls, probability: np.ndarray, y_true: np.ndarray) -> PlattCalibration | None:
        """The map, or None when it would not be increasing (out-of-fold predictions with no
        signal): reasons and rankings rest on higher raw scores meaning more risk."""
        model = LogisticRegression(C=1e6, max_iter=1000).fit(log_odds(probability).reshape(-1, 1), np.asarray(y_true, dtype=int))
        slope = float(model.coef_[0, 0])
        return cls(slope, float(model.intercept_[0])) if slope > 0 else None


def out_of_fold(
    rows: pd.DataFrame, labels: np.ndarray, predict_after_fit: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]
) -> np.ndarray | None:
    """Every row's raw prediction from a model fitted without its course (course-grouped
    folds, deterministic); None where that cannot be done well: fewer than three courses
    (a model of one course's rows predicts unlike one of all of them, and a map fitted on
    that made scores worse on held-out courses), or a fold that would learn from one
    outcome only."""
    courses = rows["course_id"].to_numpy()
    folds = CROSS_FIT_FOLDS
    if len(np.unique(courses)) < folds:
        return None
    splits = list(GroupKFold(n_splits=folds).split(rows, groups=courses))
    if any(len(np.unique(labels[fit_index])) < 2 for fit_index, _ in splits):
        return None
    predictions = np.empty(len(rows))
    for fit_index, predict_index in splits:
        predictions[predict_index] = predict_after_fit(rows.iloc[fit_index], rows.iloc[predict_index])
    return predictions

