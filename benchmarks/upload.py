"""The time to analyse an uploaded file: a generated CSV of learner rows (every value within
the feature dictionary's ranges, outcomes that follow grade and activity), checked,
profiled, plotted and, where its columns are the models' features, scored with reasons.

    .venv/bin/python -m benchmarks.upload [--rows 50000] [--columns 40]

Two files by default: `--columns` columns (user_id, is_passed, is_dropout and the first
features of the dictionary: too few to score, so the answer names the columns missing)
and one with every feature (scored by a fail and a dropout blend of CatBoost and the
logistic regression, fitted first on 5,000 generated rows with the default tree count;
the fit is not timed). Target: 50,000 rows under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
import pandas as pd

from dropout_pipeline.analytics.upload import OUTCOME_COLUMNS, UploadModels, analyse_upload
from dropout_pipeline.features.dictionary import FEATURES
from dropout_pipeline.features.validation import UNIT_RANGES
from dropout_pipeline.modeling.scorers import DEFAULT_ITERATIONS, BlendScorer
from dropout_pipeline.web.profile_charts import profile_charts

TARGET_SECONDS = 10.0
TRAINING_ROWS = 5_000
CATEGORIES = {"enrollment_mode": ["audit", "verified", "honor"], "mooc_letter_grade": ["none", "Pass", "A", "B"]}
SPREAD = {"count": 6.0, "days": 20.0, "minutes": 90.0, "weeks": 12.0, "week": 6.0, "attempts": 2.0}


def _feature_values(feature, engagement: np.ndarray, random: np.random.Generator) -> np.ndarray:
    if feature.dtype == "category":
        return random.choice(CATEGORIES[feature.name], size=len(engagement)).astype(object)
    low, high = UNIT_RANGES.get(feature.unit, (None, None))
    if low is not None and high is not None:
        values = low + (high - low) * np.clip(engagement + random.normal(0, 0.2, len(engagement)), 0, 1)
    else:
        values = (low or 0) + random.exponential(SPREAD.get(feature.unit, 5.0), len(engagement)) * (0.5 + engagement)
    if feature.dtype == "int":
        values = np.round(values)
    if feature.nullable:
        values = np.where(random.random(len(values)) < 0.1, np.nan, values)
    return values


def learner_rows(rows: int, seed: int = 20261202) -> pd.DataFrame:
    """user_id, the outcomes and every feature, for one generated class."""
    random = np.random.default_rng(seed)
    engagement = random.beta(2, 2, rows)
    frame = pd.DataFrame({"user_id": np.arange(1, rows + 1)})
    frame["is_passed"] = (engagement + random.normal(0, 0.15, rows) > 0.5).astype(int)
    frame["is_dropout"] = (engagement + random.normal(0, 0.15, rows) < 0.25).astype(int)
    for feature in FEATURES:
        frame[feature.name] = _feature_values(feature, engagement, random)
    return frame


def upload_bytes(frame: pd.DataFrame, columns: int) -> bytes:
    """The first `columns` columns (id, outcomes, then features in the dictionary's order) as UTF-8 CSV."""
    buffer = io.StringIO()
    frame.iloc[:, :columns].to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def generated_models(seed: int = 7) -> UploadModels:
    """A fail and a dropout blend fitted on generated rows of one class (what is timed is the scoring)."""
    train = learner_rows(TRAINING_ROWS, seed).assign(course_id="course-v1:GEN+UP101+2026_S2", snapshot_date=pd.Timestamp("2026-11-20").date())
    fail = BlendScorer.fit(train, "fail", DEFAULT_ITERATIONS)
    dropout = BlendScorer.fit(train, "dropout", DEFAULT_ITERATIONS)
    return UploadModels(fail, "generated fail blend", dropout, "generated dropout blend")


def time_upload_analysis(rows: int = 50_000, columns: int = 40, models: UploadModels | None = None) -> dict:
    """Seconds to analyse one generated upload of `rows` x `columns`: checks and profile,
    scoring (when its columns allow), and the page's plots, each timed."""
    data = upload_bytes(learner_rows(rows), columns)
    started, cpu_started = time.perf_counter(), time.process_time()
    analysis = analyse_upload(data, models)
    analysed = time.perf_counter()
    charts = profile_charts(analysis["profile"])
    ended, cpu_ended = time.perf_counter(), time.process_time()
    return {
        "rows": rows, "columns": data[: data.index(b"\n")].count(b",") + 1, "megabytes": round(len(data) / 1e6, 1),
        "scored": analysis["scores"]["scored"], "missing_columns": len(analysis["scores"]["missing_columns"]), "plots": len(charts),
        "analysis_seconds": round(analysed - started, 2), "plots_seconds": round(ended - analysed, 2), "total_seconds": round(ended - started, 2),
        "cpu_seconds": round(cpu_ended - cpu_started, 2), "load_average": round(os.getloadavg()[0], 1),
    }


def timing_line(timing: dict, verdict: str) -> str:
    """One upload's timing, as both benchmarks print it."""
    scoring = "scored" if timing["scored"] else f"not scored ({timing['missing_columns']} feature columns missing)"
    return (f"upload {timing['rows']:,} rows x {timing['columns']} columns ({timing['megabytes']} MB): {scoring}, {timing['plots']} plots; "
            f"{timing['total_seconds']} s (analysis {timing['analysis_seconds']} s, plots {timing['plots_seconds']} s), target < {TARGET_SECONDS:g} s: "
            f"{verdict}; CPU {timing['cpu_seconds']} s, load average {timing['load_average']} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=40)
    arguments = parser.parse_args()
    models = generated_models()
    every = 1 + len(OUTCOME_COLUMNS) + len(FEATURES)
    missed = False
    for columns in (arguments.columns, every):
        timing = time_upload_analysis(arguments.rows, columns, models)
        met = timing["total_seconds"] < TARGET_SECONDS
        missed |= not met
        print(timing_line(timing, "met" if met else "MISSED"))
    raise SystemExit(1 if missed else 0)


if __name__ == "__main__":
    main()
