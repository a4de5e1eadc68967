"""Data-quality rules for `student_features` and `training_data`, as plain functions.

Each returns a CheckOutcome the Dagster checks turn into check results; the schema is
derived from the feature dictionary's units, so a new feature is range-checked as
soon as it is documented.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

from dropout_pipeline.features.dictionary import FEATURES

UNIT_RANGES: dict[str, tuple[float | None, float | None]] = {
    "%": (0, 100),
    "0-100": (0, 100),
    "0-1": (0, 1),
    "0-2": (0, 2),
    "0/1": (0, 1),
    "count": (0, None),
    "days": (0, None),
    "minutes": (0, None),
    "weeks": (0, None),
    "week": (1, None),
    "attempts": (0, None),
    "percentage points": (-100, 100),
}
NULLABLE = {f.name for f in FEATURES if f.nullable}
MAX_NULL_RATE = 0.95  # a nullable feature null for nearly everyone is a broken source, not quiet learners
LABELS = ("is_passed", "is_dropout")
MIN_MINORITY_SHARE = 0.02


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _column(feature) -> pa.Column:
    nullable = feature.name in NULLABLE
    if feature.dtype == "category":
        return pa.Column(object, pa.Check.str_length(min_value=1), nullable=False)
    low, high = UNIT_RANGES.get(feature.unit, (None, None))
    checks = []
    if low is not None:
        checks.append(pa.Check.ge(low))
    if high is not None:
        checks.append(pa.Check.le(high))
    return pa.Column("int64" if feature.dtype == "int" else "float64", checks, nullable=nullable)


def feature_schema(extra: dict[str, pa.Column] | None = None, unique: Iterable[str] = ("user_id", "course_id")) -> pa.DataFrameSchema:
    columns = {"user_id": pa.Column("int64", pa.Check.gt(0)), "course_id": pa.Column(nullable=False)}
    columns.update({f.name: _column(f) for f in FEATURES})
    columns.update(extra or {})
    return pa.DataFrameSchema(columns, unique=list(unique), strict=False, coerce=False)


def _validate(schema: pa.DataFrameSchema, frame: pd.DataFrame, what: str) -> CheckOutcome:
    try:
        schema.validate(frame.reset_index(drop=True), lazy=True)  # pandera cannot report on a duplicated index
    except pa.errors.SchemaErrors as error:
        cases = error.failure_cases
        summary = cases.groupby(["column", "check"], dropna=False).size().reset_index(name="failures")
        return CheckOutcome(
            False,
            f"{what}: {len(cases)} values break the schema",
            {"failures": summary.astype(str).to_dict("records")[:20]},
        )
    return CheckOutcome(True, f"{what}: {len(frame)} rows match the schema", {"rows": len(frame)})


def validate_features(frame: pd.DataFrame) -> CheckOutcome:
    """Types, ranges and the (user_id, course_id) key."""
    return _validate(feature_schema(), frame, "student_features")


def every_learner_present(frame: pd.DataFrame, enrolled_user_ids: Iterable[int]) -> CheckOutcome:
    missing = sorted(set(enrolled_user_ids) - set(frame["user_id"]))
    return CheckOutcome(
        not missing,
        f"{len(missing)} enrolled learners have no feature row" if missing else "every enrolled learner has a feature row",
        {"missing_count": len(missing), "missing_sample": missing[:10]},
    )


def null_rates(frame: pd.DataFrame) -> dict[str, float]:
    return {f.name: round(float(frame[f.name].isna().mean()), 4) if len(frame) else 0.0 for f in FEATURES}


def _null_by_design(frame: pd.DataFrame) -> set[str]:
    """Nullable features that may be null for everyone: those undefined early in a course,
    and those of a source the course does not have (H5P content, videos)."""
    absent = {prefix for prefix, flag in (("h5p_", "course_has_h5p"), ("video_", "course_has_videos")) if len(frame) and not frame[flag].any()}
    return {f.name for f in FEATURES if f.nullable and (f.often_null or any(f.name.startswith(prefix) for prefix in absent))}


def null_rates_acceptable(frame: pd.DataFrame) -> CheckOutcome:
    rates, by_design = null_rates(frame), _null_by_design(frame)
    too_high = {
        name: rate for name, rate in rates.items()
        if name not in by_design and (rate > MAX_NULL_RATE if name in NULLABLE else rate > 0)
    }
    return CheckOutcome(
        not too_high,
        f"null rate too high for {sorted(too_high)}" if too_high else "null rates within limits",
        {"too_high": too_high, "max_null_rate_nullable": MAX_NULL_RATE},
    )


def validate_training_rows(frame: pd.DataFrame) -> CheckOutcome:
    """Features as above plus labels that are never null, one row per learner and snapshot date."""
    labels = {
        "is_passed": pa.Column(bool, nullable=False),
        "is_dropout": pa.Column(bool, nullable=False),
        "final_grade": pa.Column("float64", [pa.Check.ge(0), pa.Check.le(100)], nullable=False),
        "snapshot_week": pa.Column("int64", pa.Check.ge(1), nullable=False),
        "semester": pa.Column(nullable=False),
    }
    return _validate(feature_schema(labels, unique=("user_id", "course_id", "snapshot_date")), frame, "training_data")


def every_week_covered(frame: pd.DataFrame, course_weeks: Iterable[int], weeks_with_learners: Iterable[int]) -> CheckOutcome:
    """Training rows for every course week before the end in which learners were enrolled,
    and for no week outside the course."""
    allowed, expected, present = set(course_weeks), set(weeks_with_learners), set(frame["snapshot_week"].astype(int))
    missing, unexpected = sorted(expected - present), sorted(present - allowed)
    covered = f"all {len(expected)} weeks before the end with learners enrolled covered" + (
        f" (nobody enrolled in weeks {sorted(allowed - expected)})" if allowed - expected else ""
    )
    return CheckOutcome(
        not missing and not unexpected,
        f"weeks missing {missing}, unexpected {unexpected}" if missing or unexpected else covered,
        {"expected_weeks": sorted(expected), "missing_weeks": missing, "unexpected_weeks": unexpected},
    )


def label_balance(frame: pd.DataFrame) -> CheckOutcome:
    """Both classes of both labels present enough to learn from; reports the balance."""
    learners = frame.drop_duplicates(["user_id", "course_id"])
    balance = {label: round(float(learners[label].mean()), 4) if len(learners) else None for label in LABELS}
    degenerate = [label for label, share in balance.items() if share is None or min(share, 1 - share) < MIN_MINORITY_SHARE]
    return CheckOutcome(
        not degenerate,
        f"labels too one-sided to learn from: {degenerate}" if degenerate else "both classes present for every label",
        {"positive_share": balance, "learners": len(learners), "rows": len(frame)},
    )
