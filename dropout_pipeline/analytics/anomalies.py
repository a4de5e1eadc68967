"""Engagement anomalies: how unusual each learner's engagement is among their classmates on
the same date, by an Isolation Forest, and the score above which a learner is flagged.

The forest is fitted per course and date (a "list", as a teacher sees it) on the weekly
engagement features, and its score is Liu, Ting and Zhou's (2008) 2^(-E[h(x)] / c(n)):
between 0 and 1, about 0.5 for an ordinary learner, near 1 for one isolated in a few
splits. Being normalised by the expected path length, it means the same in a course of 40
learners and one of 600, so a threshold chosen on finished courses carries over to a
running one, which a share of each class (the legacy's fixed 10%) would not. The threshold
(choose_threshold has the rule) is chosen on finished courses against later dropout and kept
in `anomaly_thresholds` until another course is frozen (current_threshold).

"Unusual" is not "at risk": a learner far more active than the class is as unusual as
one gone quiet. Whether the flag says anything about dropping out is measured, on finished
courses the threshold was not chosen on (`anomaly_holdout_report`), beside the dropout
model's own precision at the same number of learners flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sklearn.ensemble import IsolationForest
from sklearn.metrics import precision_recall_curve, roc_auc_score

from dropout_pipeline.analytics.evidence import reliability_from_auc
from dropout_pipeline.features.calendar import day_of_course_week
from dropout_pipeline.modeling.retrain import evaluated_artifact
from dropout_pipeline.modeling.scorers import SEED, load_scorer
from dropout_pipeline.storage.analytics_tables import count_finished_rows, read_anomaly_threshold, read_finished_rows, store_anomaly_threshold
from dropout_pipeline.storage.feature_tables import read_training_data
from dropout_pipeline.storage.model_tables import default_model, model_label

ENGAGEMENT_FEATURES: Final = (
    "events_last_7_days",  # activity this week: H5P contents finished and videos watched
    "activity_trend_7_days",  # this week against the week before
    "active_days",
    "weeks_active_share",  # regularity
    "days_inactive_share",
    "completed_blocks",  # units completed: the platform's APIs give no click stream, this is the nearest to it
    "h5p_completed_contents",
    "video_completed_videos",
    "video_watch_time_minutes",
    "discussion_total_interactions",  # forum
)
"""Engagement only, from the feature dictionary, none nullable: grades are the model's and the
rules' evidence, and what the course offers (videos, H5P) is the same for every learner of a list."""

ISOLATION_TREES: Final = 100
"""Trees of each forest: Liu, Ting and Zhou found path lengths converge well within 100 trees
(and 256-row subsamples, scikit-learn's default); each list then takes under a tenth of a second."""

MIN_LEARNERS: Final = 10
"""Below this many learners on a date nobody is scored: one of five is not unusual, only different."""

MAX_FLAGGED_SHARE: Final = 0.25
"""A threshold may flag at most this share of the finished courses' learners: a flag on more than a
quarter of a class marks a worklist, not the unusual; and without a cap, maximising F1 ends by
flagging everyone wherever the score is weak and dropouts common (flag-all has F1 2b/(1+b) at a
dropout rate b: 0.50 at the simulator's 33%)."""

SELECTION_DAY: Final = 7
"""Thresholds are chosen, and the reports measured, on each week's last day only (training rows
hold days 1, 4 and 7): the same learners three times a week add forest fits (a tenth of a second
each, per course and date), hardly evidence."""

KEY: Final = ("course_id", "user_id")
LIST: Final = ("course_id", "snapshot_date")


def _engagement_matrix(learners: pd.DataFrame) -> np.ndarray:
    missing = [name for name in (*KEY, *ENGAGEMENT_FEATURES) if name not in learners.columns]
    if missing:
        raise ValueError(f"engagement anomalies need the columns {missing}, which the rows do not have")
    values = learners[list(ENGAGEMENT_FEATURES)].apply(pd.to_numeric, errors="coerce")
    nulls = {name: int(count) for name, count in values.isna().sum().items() if count}
    if nulls:
        raise ValueError(f"engagement features are never null, but these are (rows per feature): {nulls}")
    return values.to_numpy(dtype=float)


def anomaly_scores(learners: pd.DataFrame) -> pd.Series:
    """The anomaly score (0 to 1, 1 = most unusual) of each learner of one list, on `learners`' index.

    The rows are sorted by learner before the forest is fitted: its subsample is drawn by
    position, so with a fixed seed the same learners give the same scores in any order.
    A list of fewer than MIN_LEARNERS learners gets no scores (NaN).
    """
    matrix = _engagement_matrix(learners)
    duplicated = learners.duplicated(list(KEY))
    if duplicated.any():
        raise ValueError(f"a list holds each learner once; repeated: {learners.loc[duplicated, list(KEY)].head(5).to_dict('records')}")
    if len(learners) < MIN_LEARNERS:
        return pd.Series(np.nan, index=learners.index, dtype=float)
    order = np.lexsort((learners["user_id"].to_numpy(), learners["course_id"].astype(str).to_numpy()))
    forest = IsolationForest(n_estimators=ISOLATION_TREES, random_state=SEED).fit(matrix[order])
    scores = np.empty(len(learners))
    scores[order] = -forest.score_samples(matrix[order])
    return pd.Series(scores, index=learners.index)


def scores_per_list(rows: pd.DataFrame) -> pd.Series:
    """Anomaly scores of rows of many courses and dates, each scored among its own list."""
    if rows.empty:
        return pd.Series(dtype=float, index=rows.index)
    return pd.concat([anomaly_scores(group) for _, group in rows.groupby(list(LIST), sort=True)]).reindex(rows.index)


@dataclass(frozen=True)
class AnomalyThreshold:
    """The flag threshold and what it was chosen on. `threshold` None: nothing can be flagged, `note` says why."""

    threshold: float | None
    reliability: float  # reliability_from_auc of the score against later dropout on the selection rows
    f1: float | None
    precision: float | None
    recall: float | None
    flagged_share: float | None
    courses: tuple[str, ...]
    rows: int
    note: str


def choose_threshold(scores: np.ndarray, dropped_out: np.ndarray) -> tuple[float, float, float, float, float] | None:
    """The score threshold (flag: score >= threshold) that maximises F1 against later dropout
    among those flagging at most MAX_FLAGGED_SHARE, and only if its flagged learners drop out
    more often than the rest do on average (precision above the dropout rate: a flag that
    does no better than picking learners at random is no flag). Returns (threshold, F1,
    precision, recall, flagged share), or None when no threshold qualifies."""
    y, s = np.asarray(dropped_out, dtype=int), np.asarray(scores, dtype=float)
    if len(np.unique(y)) < 2:
        return None
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # the last point is "flag nobody", with no threshold
    share = (len(s) - np.searchsorted(np.sort(s), thresholds, side="left")) / len(s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    allowed = (share <= MAX_FLAGGED_SHARE) & (precision > y.mean())
    if not allowed.any():
        return None
    best = int(np.argmax(np.where(allowed, f1, -1.0)))
    return float(thresholds[best]), float(f1[best]), float(precision[best]), float(recall[best]), float(share[best])


def week_end_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The finished courses' rows a threshold is chosen and judged on: each week's last day (SELECTION_DAY)."""
    return rows[day_of_course_week(rows["course_day"]) == SELECTION_DAY]


def threshold_from_finished(rows: pd.DataFrame) -> AnomalyThreshold:
    """The threshold chosen on finished courses' training rows (with `is_dropout` and `course_day`),
    scored list by list as a running course is (choose_threshold has the rule)."""
    chosen_on = week_end_rows(rows)
    courses = tuple(sorted(chosen_on["course_id"].unique()))
    nothing = dict(threshold=None, f1=None, precision=None, recall=None, flagged_share=None, courses=courses, rows=len(chosen_on))
    if chosen_on.empty:
        return AnomalyThreshold(reliability=0.0, note="no finished course yet: no threshold can be chosen, nobody is flagged", **nothing)
    scores = scores_per_list(chosen_on)
    scored = scores.notna()
    y, s = chosen_on.loc[scored, "is_dropout"].astype(int).to_numpy(), scores[scored].to_numpy()
    if len(np.unique(y)) < 2:
        return AnomalyThreshold(reliability=0.0, note="the learners scored in finished courses have one outcome only: no threshold can be chosen, nobody is flagged", **nothing)
    reliability = reliability_from_auc(float(roc_auc_score(y, s)))
    choice = choose_threshold(s, y)
    if choice is None:
        note = (f"on {len(courses)} finished courses no threshold flagging at most {MAX_FLAGGED_SHARE:.0%} picks out dropouts "
                "better than chance: nobody is flagged")
        return AnomalyThreshold(reliability=reliability, note=note, **nothing)
    threshold, f1, precision, recall, share = choice
    return AnomalyThreshold(
        threshold, reliability, f1, precision, recall, share, courses, len(chosen_on),
        f"F1-best threshold against later dropout on {len(courses)} finished courses (week ends, {len(chosen_on)} rows)",
    )


def _finished(connection: sa.Connection) -> pd.DataFrame:
    return read_finished_rows(connection, [*ENGAGEMENT_FEATURES, "course_day", "is_dropout"])


def read_threshold(connection: sa.Connection, exclude_courses: tuple[str, ...] = ()) -> AnomalyThreshold:
    """The threshold chosen on every finished course but `exclude_courses`."""
    rows = _finished(connection)
    return threshold_from_finished(rows[~rows["course_id"].isin(exclude_courses)])


def current_threshold(engine: sa.Engine, now: datetime) -> AnomalyThreshold:
    """The threshold chosen on every finished course: the one kept for the training rows there
    are, else chosen now and kept (training_data only grows when a course is frozen, so each
    course's daily run reuses it)."""
    with engine.connect() as connection:
        kept = read_anomaly_threshold(connection, count_finished_rows(connection))
        if kept is not None:
            return AnomalyThreshold(**{f.name: kept[f.name] for f in fields(AnomalyThreshold) if f.name != "courses"}, courses=tuple(kept["courses"]))
        rows = _finished(connection)
    threshold = threshold_from_finished(rows)
    with engine.begin() as connection:
        store_anomaly_threshold(connection, {**asdict(threshold), "courses": list(threshold.courses), "training_rows": len(rows), "chosen_at": now})
    return threshold


def course_anomalies(features: pd.DataFrame, threshold: AnomalyThreshold) -> pd.DataFrame:
    """One row per learner of a course on its snapshot date: score, flag, threshold and the features scored."""
    dates = pd.to_datetime(features["snapshot_date"]).dt.date.unique() if len(features) else []
    if len(dates) > 1:
        raise ValueError(f"a course's anomalies are scored on one date, the features hold {len(dates)}: {sorted(dates)[:3]}")
    scores = anomaly_scores(features)
    flagged = scores.ge(threshold.threshold) if threshold.threshold is not None else pd.Series(False, index=features.index)
    return pd.DataFrame({
        "course_id": features["course_id"],
        "user_id": features["user_id"],
        "snapshot_date": pd.to_datetime(features["snapshot_date"]).dt.date,
        "score": scores,
        "is_flagged": flagged.astype(bool),
        "threshold": threshold.threshold,
        "reliability": threshold.reliability,
        "features": features[list(ENGAGEMENT_FEATURES)].astype(float).to_dict("records"),
    }).sort_values("user_id", kind="mergesort").reset_index(drop=True)


def held_out_week_ends(connection: sa.Connection, held_out: tuple[str, ...]) -> pd.DataFrame:
    """The held-out courses' week-end training rows, in key order, as the reports judge them."""
    rows = week_end_rows(read_training_data(connection, list(held_out)))
    return rows.sort_values(["course_id", "snapshot_date", "user_id"], kind="mergesort").reset_index(drop=True)


def _top_k_per_list(probability: np.ndarray, lists: np.ndarray, sizes: dict) -> np.ndarray:
    """In each list, its `sizes[list]` rows of highest probability (ties by position)."""
    flagged = np.zeros(len(probability), dtype=bool)
    for key, size in sizes.items():
        members = np.flatnonzero(lists == key)
        flagged[members[np.argsort(-probability[members], kind="stable")[:size]]] = True
    return flagged


def _precision_at_same_size(rows: pd.DataFrame, flagged: np.ndarray, probability: np.ndarray) -> dict:
    y = rows["is_dropout"].astype(int).to_numpy()
    lists = (rows["course_id"].astype(str) + "|" + rows["snapshot_date"].astype(str)).to_numpy()
    sizes = pd.Series(flagged).groupby(lists).sum().to_dict()
    by_model = _top_k_per_list(probability, lists, sizes)

    def share(mask: np.ndarray) -> float | None:
        return float(y[mask].mean()) if mask.any() else None

    return {
        "rows": int(len(y)),
        "lists": int(len(sizes)),
        "dropouts": int(y.sum()),
        "dropout_rate": share(np.ones(len(y), dtype=bool)),
        "flagged": int(flagged.sum()),
        "anomaly_precision": share(flagged),
        "model_precision_same_size": share(by_model),
        "anomaly_recall": float(y[flagged].sum() / y.sum()) if y.sum() else None,
        "model_recall_same_size": float(y[by_model].sum() / y.sum()) if y.sum() else None,
    }


def anomaly_holdout_report(engine: sa.Engine) -> dict:
    """On the default dropout model's held-out courses: precision against later dropout of the
    learners flagged (threshold chosen on the other finished courses), beside the dropout
    model's precision when it flags as many learners in each list (its riskiest), with the
    sample sizes, on every week's last day and on those of weeks 1 to 4.

    The model's scores are its judged twin's (`vN.evaluated.*`, fitted without the held-out
    courses and calibrated on its training courses), the one the nightly retrain evaluated.
    """
    with engine.connect() as connection:
        model = default_model(connection, "dropout")
        if model is None:
            raise ValueError("no default dropout-risk model: train one (the `nightly_retrain` job) before comparing with it")
        held_out = tuple(model["holdout_courses"])
        threshold = read_threshold(connection, exclude_courses=held_out)
        rows = held_out_week_ends(connection, held_out)
    scores = scores_per_list(rows)
    flagged = (scores >= threshold.threshold).to_numpy() if threshold.threshold is not None else np.zeros(len(rows), dtype=bool)
    probability = load_scorer(evaluated_artifact(Path(model["model_path"]))).predict_proba(rows)
    early = rows["snapshot_week"].between(1, 4).to_numpy()
    return {
        "model": model_label(model),
        "held_out_courses": list(held_out),
        "threshold": threshold.threshold,
        "threshold_rule": threshold.note,
        "chosen_on": {"courses": list(threshold.courses), "rows": threshold.rows, "f1": threshold.f1, "precision": threshold.precision,
                      "recall": threshold.recall, "flagged_share": threshold.flagged_share, "reliability": threshold.reliability},
        "all_weeks": _precision_at_same_size(rows, flagged, probability),
        "weeks_1_to_4": _precision_at_same_size(rows[early], flagged[early], probability[early]),
    }
