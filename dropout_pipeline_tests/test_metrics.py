"""Calibration (Platt scaling fitted out of sample, keeping the ranking, measured by ECE) and worklist metrics."""

import numpy as np
import pandas as pd
import pytest

from dropout_pipeline.modeling.calibration import PlattCalibration, out_of_fold
from dropout_pipeline.modeling.metrics import expected_calibration_error, reliability_table, worklist_metrics, worklist_size


def overconfident_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn with probability q, reported as a model three times too sure of itself."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.02, 0.98, n)
    y = (rng.uniform(size=n) < q).astype(int)
    return y, 1 / (1 + np.exp(-3 * np.log(q / (1 - q))))


def test_platt_scaling_makes_overconfident_scores_honest_on_fresh_data_and_keeps_their_order():
    y_fit, raw_fit = overconfident_sample(4000, seed=1)
    y_new, raw_new = overconfident_sample(4000, seed=2)
    calibration = PlattCalibration.fit(raw_fit, y_fit)
    assert calibration.slope == np.clip(calibration.slope, 0.25, 0.45)  # about 1/3 undoes the overconfidence
    assert expected_calibration_error(y_new, raw_new) > 0.08
    assert expected_calibration_error(y_new, calibration(raw_new)) < 0.03
    ordered = np.sort(raw_new)
    assert np.all(np.diff(calibration(ordered[np.diff(ordered, prepend=-1) > 0])) > 0)  # strictly increasing: no new ties
    truth = 1 / (1 + np.exp(-np.log(0.999 / 0.001) / 3))  # what a raw 0.999 stood for: about 0.91
    assert abs(calibration(np.array([0.999]))[0] - truth) < 0.03


def test_reliability_table_counts_every_row_once_and_ece_is_its_weighted_gap():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.95, 0.85, 0.55, 0.45])
    table = reliability_table(y, p)
    assert sum(row["n"] for row in table) == len(y)
    assert [row["bin"] for row in table] == ["0.0-0.1", "0.1-0.2", "0.4-0.5", "0.5-0.6", "0.8-0.9", "0.9-1.0"]
    assert expected_calibration_error(y, p) == pytest.approx(np.mean(np.abs(p - y)))  # one row a bin


def test_out_of_fold_predictions_never_come_from_a_model_that_saw_the_course():
    rows = pd.DataFrame({"course_id": np.repeat(["a", "b", "c", "d"], 5), "x": range(20)})
    labels = np.tile([0, 1, 0, 1, 1], 4)
    seen = []

    def fit_then_predict(fit: pd.DataFrame, predict: pd.DataFrame) -> np.ndarray:
        assert not set(fit["course_id"]) & set(predict["course_id"])
        seen.append(set(predict["course_id"]))
        return predict["x"].to_numpy() / 100

    predictions = out_of_fold(rows, labels, fit_then_predict)
    assert np.allclose(predictions, rows["x"] / 100)  # each row predicted once, in place
    assert set().union(*seen) == {"a", "b", "c", "d"}
    assert out_of_fold(rows[rows["course_id"] == "a"], labels[:5], fit_then_predict) is None  # nothing to hold out
    one_outcome_course = np.array([1] * 5 + [0, 1, 0, 1, 1] * 3)
    assert out_of_fold(rows, np.where(rows["course_id"] == "a", 1, 0), fit_then_predict) is None  # a fold would learn one outcome
    assert out_of_fold(rows, one_outcome_course, fit_then_predict) is not None


def test_no_signal_out_of_fold_gives_no_map_rather_than_one_that_reverses_the_ranking():
    rng = np.random.default_rng(3)
    raw = rng.uniform(0.05, 0.95, 2000)
    assert PlattCalibration.fit(raw, (raw < 0.5).astype(int)) is None  # higher raw, less risk: refused


def test_worklists_flag_the_riskiest_share_of_each_course_and_week_and_pool_them():
    # Two lists of ten: the riskiest one of each is flagged (10%, at least one).
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 1, 0] + [0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.1] + [0.9, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    lists = np.repeat(["a|1", "b|1"], 10)
    assert worklist_size(10) == 1 and worklist_size(11) == 2 and worklist_size(0) == 0 and worklist_size(3, 0.5) == 2
    assert worklist_metrics(y, p, lists) == {"worklist_share": 0.1, "worklist_precision": 0.5, "worklist_recall": 1 / 3}
