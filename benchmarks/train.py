"""Training: time on 200,000 rows, holdout metrics per snapshot week beside the baselines, and calibration.

Metrics come from a full retraining on the simulator's data as the demo stored it
(latest semester held out). The timing then fits the same CatBoost configuration on
200,000 rows: the demo's training rows repeated under new course ids, which keeps the
shape and value distribution of real rows.

    make demo && .venv/bin/python benchmarks/train.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks._demo_data import demo_copy
from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.modeling.report import overall_table, per_week_table
from dropout_pipeline.modeling.retrain import RetrainRequest, retrain
from dropout_pipeline.modeling.scorers import CatBoostScorer
from dropout_pipeline.storage.feature_tables import read_training_data

ROWS = 200_000


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = demo_copy(Path(folder))
        for target in ("fail", "dropout"):
            started = time.perf_counter()
            request = RetrainRequest(target=target, model_name=f"benchmark_{target}", models_dir=Path(folder), auc_floor=0.7,
                                     champion_margin=0.02, domain="benchmark")
            result = retrain(engine, request)
            print(f"\n== target: {target} ({result.split_strategy}); training rows {result.training_rows}, "
                  f"holdout rows {result.overall()['n_samples']}; retrain with evaluation {time.perf_counter() - started:.1f} s")
            print(per_week_table(result))
            print()
            print(overall_table(result))
            calibration = result.calibration
            print(f"\ncalibration ({calibration['method']}): ECE on the holdout {calibration['holdout_ece_raw']:.3f} raw -> "
                  f"{result.overall()['calibration_error']:.3f} calibrated (target <= 0.05); reliability:")
            for row in calibration["holdout_reliability"]:
                print(f"  {row['bin']}  n={row['n']:>6}  predicted {row['mean_predicted']:.3f}  observed {row['observed_rate']:.3f}")
        with engine.connect() as connection:
            data = read_training_data(connection)
    copies = -(-ROWS // len(data))
    big = pd.concat([data.assign(course_id=data["course_id"] + f"-copy{n}") for n in range(copies)], ignore_index=True).head(ROWS)
    started = time.perf_counter()
    CatBoostScorer.fit(big, "fail")
    print(f"\nCatBoost fit ({len(FEATURE_NAMES)} features, 300 iterations, depth 4, 2 threads) on {len(big):,} rows: "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
