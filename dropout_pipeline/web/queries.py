"""The web app's reads but the risk list (web.risk_list): courses, statistics, learners and
models, in SQLAlchemy Core (no SQL is ever built from input: values
are bound parameters, and sorts and filters are chosen from fixed sets).

Reads only: the web app writes tokens, sessions and feedback (storage.web_tables), never
a prediction, a feature or a training row.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import sqlalchemy as sa

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.features.dictionary import FEATURES
from dropout_pipeline.lifecycle.plan import state_of
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.model_tables import model_for_course, model_label
from dropout_pipeline.storage.web_tables import Principal
from dropout_pipeline.web.risk_list import LEVELS
from dropout_pipeline.web.run_cache import NO_CACHE, RunCache

p, e, f, c = schema.predictions, schema.enrollments, schema.student_features, schema.courses
registry, performance = schema.model_registry, schema.model_performance

BIN_WIDTH = 10  # the distribution's bins of fail risk: 0-10, 10-20, ... 90-100


def plausible_key(text: str) -> bool:
    """A string that could be a stored key: anything else matches no row, so it is not
    sent to the database (PostgreSQL refuses NUL characters in a parameter)."""
    return len(text) <= 255 and "\x00" not in text


def course_row(connection: sa.Connection, course_id: str) -> dict | None:
    if not plausible_key(course_id):
        return None
    row = connection.execute(sa.select(c).where(c.c.course_id == course_id)).mappings().first()
    return dict(row) if row else None


def _scope(principal: Principal) -> sa.ColumnElement[bool]:
    if principal.is_admin:
        return sa.true()
    return sa.or_(c.c.course_id.in_(sorted(principal.courses)), c.c.org.in_(sorted(principal.orgs)))


def courses_overview(connection: sa.Connection, principal: Principal, today: date) -> list[dict]:
    """The courses the principal may see, newest first: state, learners, counts per level of
    the latest predictions, when they were made and by which model, and the model that
    serves the course now (its mapping, else the default)."""
    rows = connection.execute(sa.select(c).where(_scope(principal)).order_by(c.c.start.desc(), c.c.course_id)).mappings().all()
    ids = [row["course_id"] for row in rows]
    if not ids:
        return []
    learners = dict(connection.execute(sa.select(e.c.course_id, sa.func.count()).where(e.c.course_id.in_(ids)).group_by(e.c.course_id)).all())
    levels: dict[str, dict[str, int]] = defaultdict(dict)
    for course_id, level, count in connection.execute(
        sa.select(p.c.course_id, p.c.risk_level, sa.func.count()).where(p.c.is_latest == sa.true(), p.c.course_id.in_(ids)).group_by(p.c.course_id, p.c.risk_level)
    ):
        levels[course_id][level] = count
    made: dict[str, tuple] = {}
    for course_id, name, version, at in connection.execute(
        sa.select(p.c.course_id, p.c.model_name, p.c.model_version, sa.func.max(p.c.predicted_at))
        .where(p.c.is_latest == sa.true(), p.c.course_id.in_(ids))
        .group_by(p.c.course_id, p.c.model_name, p.c.model_version)
    ):
        if course_id not in made or at > made[course_id][0]:
            made[course_id] = (at, model_label({"model_name": name, "model_version": version}))
    overview = []
    for row in rows:
        course_id = row["course_id"]
        counts = {level: levels[course_id].get(level, 0) for level in LEVELS}
        enrolled = learners.get(course_id, 0)
        overview.append({
            "course_id": course_id,
            "display_name": row["display_name"],
            "org": row["org"],
            "start": row["start"],
            "end": row["end"],
            "state": str(state_of(CourseCalendar(course_id, row["start"], row["end"]), today)),
            "learners": enrolled,
            "risk_levels": counts,
            "not_predicted": max(enrolled - sum(counts.values()), 0),
            "last_predicted_at": made.get(course_id, (None, None))[0],
            "latest_predictions_model": made.get(course_id, (None, None))[1],
            "serving_model": model_label(model_for_course(connection, course_id)),
        })
    return overview


# --- Statistics ------------------------------------------------------------------------------


def _bin() -> sa.ColumnElement[int]:
    score = p.c.fail_risk_score
    return sa.case(*((score < BIN_WIDTH * (i + 1), i) for i in range(100 // BIN_WIDTH - 1)), else_=100 // BIN_WIDTH - 1)


def course_statistics(connection: sa.Connection, course: dict, cache: RunCache | None = NO_CACHE) -> dict:
    """course_statistics_now, from the cache while the course's runs are unchanged."""
    if cache is None:
        return course_statistics_now(connection, course)
    return cache.get(connection, "statistics", course["course_id"], lambda: course_statistics_now(connection, course))


def course_statistics_now(connection: sa.Connection, course: dict) -> dict:
    """The course week by week: for each course week, its last prediction run (the latest
    state the teachers saw that week): learners predicted, counts per level, mean fail
    risk, and the distribution of fail risk in bins of 10 points. Plus who is enrolled and
    not predicted now."""
    course_id = course["course_id"]
    calendar = CourseCalendar(course_id, course["start"], course["end"])
    runs: dict = defaultdict(lambda: {"levels": defaultdict(int), "bins": defaultdict(int), "sum": 0.0, "n": 0})
    bin_ = _bin().label("bin")
    grouped = (
        sa.select(p.c.predicted_at, p.c.snapshot_date, p.c.risk_level, bin_, sa.func.count().label("n"), sa.func.sum(p.c.fail_risk_score).label("total"))
        .where(p.c.course_id == course_id)
        .group_by(p.c.predicted_at, p.c.snapshot_date, p.c.risk_level, bin_)
    )
    for row in connection.execute(grouped).mappings():
        run = runs[(row["predicted_at"], row["snapshot_date"])]
        run["levels"][row["risk_level"]] += row["n"]
        run["bins"][row["bin"]] += row["n"]
        run["sum"] += float(row["total"] or 0.0)
        run["n"] += row["n"]
    last_of_week: dict[int, tuple] = {}
    for predicted_at, snapshot_date in sorted(runs):
        last_of_week[calendar.week_of(snapshot_date)] = (predicted_at, snapshot_date)  # sorted: the week's last wins
    weeks = []
    for week, key in sorted(last_of_week.items()):
        run = runs[key]
        weeks.append({
            "week": week,
            "snapshot_date": key[1],
            "predicted_at": key[0],
            "learners": run["n"],
            "risk_levels": {level: run["levels"].get(level, 0) for level in LEVELS},
            "mean_fail_risk": round(run["sum"] / run["n"], 2) if run["n"] else None,
            "distribution": [
                {"from": i * BIN_WIDTH, "to": (i + 1) * BIN_WIDTH, "learners": run["bins"].get(i, 0)} for i in range(100 // BIN_WIDTH)
            ],
        })
    enrolled = connection.execute(sa.select(sa.func.count()).select_from(e).where(e.c.course_id == course_id)).scalar()
    latest = connection.execute(
        sa.select(sa.func.count()).select_from(p.join(e, sa.and_(e.c.user_id == p.c.user_id, e.c.course_id == p.c.course_id)))
        .where(p.c.course_id == course_id, p.c.is_latest == sa.true())
    ).scalar()
    return {"course_id": course_id, "enrolled": enrolled, "predicted": latest, "not_predicted": enrolled - latest, "weeks": weeks}


# --- A learner ---------------------------------------------------------------------------------

FEATURE_NAMES = [feature.name for feature in FEATURES]
ENROLMENT_COLUMNS = (e.c.user_id, e.c.username, e.c.full_name, e.c.email, e.c.mode, e.c.is_active, e.c.created)
TIMELINE_COLUMNS = (
    p.c.id.label("prediction_id"), p.c.predicted_at, p.c.snapshot_date, p.c.model_name, p.c.model_version, p.c.fail_risk_score,
    p.c.dropout_risk_score, p.c.risk_level, p.c.snapshot_grade, p.c.snapshot_completion_rate, p.c.reasons, p.c.dropout_reasons, p.c.is_latest,
)


def learner(connection: sa.Connection, course: dict, user_id: int) -> dict | None:
    """A learner of a course: enrolment, current features (with their meaning), every
    prediction (oldest first) and the weekly view a chart draws: the last prediction of
    each course week, with the grade it saw. None when the learner is not enrolled."""
    course_id = course["course_id"]
    found = connection.execute(
        sa.select(*ENROLMENT_COLUMNS, f.c.snapshot_date.label("features_on"), *(f.c[name] for name in FEATURE_NAMES))
        .select_from(e.outerjoin(f, sa.and_(f.c.user_id == e.c.user_id, f.c.course_id == e.c.course_id)))
        .where(e.c.course_id == course_id, e.c.user_id == user_id)
    ).mappings().first()
    if found is None:
        return None
    enrolment = {column.name: found[column.name] for column in ENROLMENT_COLUMNS}
    features = [
        {"name": feature.name, "meaning": feature.meaning, "unit": feature.unit, "value": found[feature.name]}
        for feature in FEATURES
    ] if found["features_on"] is not None else []
    timeline = [dict(row) for row in connection.execute(
        sa.select(*TIMELINE_COLUMNS).where(p.c.course_id == course_id, p.c.user_id == user_id).order_by(p.c.predicted_at, p.c.id)
    ).mappings()]
    calendar = CourseCalendar(course_id, course["start"], course["end"])
    weekly: dict[int, dict] = {}
    for row in timeline:
        row["week"] = calendar.week_of(row["snapshot_date"])
        row["model"] = model_label({"model_name": row["model_name"], "model_version": row["model_version"]})
        weekly[row["week"]] = row  # oldest first: the week's last prediction wins
    return {
        "course_id": course_id,
        "user_id": user_id,
        "enrolment": dict(enrolment),
        "features_on": found["features_on"],
        "features": features,
        "predicted": bool(timeline),
        "timeline": timeline,
        "weekly": [
            {"week": week, "snapshot_date": row["snapshot_date"], "fail_risk_score": row["fail_risk_score"],
             "dropout_risk_score": row["dropout_risk_score"], "grade": row["snapshot_grade"], "risk_level": row["risk_level"]}
            for week, row in sorted(weekly.items())
        ],
    }


def prediction_row(connection: sa.Connection, prediction_id: int) -> dict | None:
    row = connection.execute(
        sa.select(p.c.id, p.c.user_id, p.c.course_id, p.c.is_latest, p.c.risk_level, p.c.fail_risk_score).where(p.c.id == prediction_id)
    ).mappings().first()
    return dict(row) if row else None


# --- Models ----------------------------------------------------------------------------------

REGISTRY_COLUMNS = (
    registry.c.model_name, registry.c.model_version, registry.c.target, registry.c.model_type, registry.c.domain, registry.c.trained_at,
    registry.c.training_rows, registry.c.holdout_courses, registry.c.metrics, registry.c.is_active, registry.c.is_default,
)
METRICS = ("n_samples", "n_positive", "roc_auc", "pr_auc", "accuracy", "precision_score", "recall_score", "f1_score", "brier_score",
           "calibration_error", "threshold", "confusion_matrix", "worklist_share", "worklist_precision", "worklist_recall")
EARLY_WEEKS = (1, 2, 3, 4)


def _version(row: dict) -> dict:
    metrics = row.pop("metrics") or {}
    return {**row, "candidate": metrics.get("candidate"), "early_weeks_roc_auc": metrics.get("early_weeks_roc_auc") or {}}


def models(connection: sa.Connection) -> list[dict]:
    """Every model name with its versions, newest first."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in connection.execute(sa.select(*REGISTRY_COLUMNS).order_by(registry.c.model_name, registry.c.model_version.desc())).mappings():
        grouped[row["model_name"]].append(_version(dict(row)))
    return [{"model_name": name, "target": versions[0]["target"], "versions": versions} for name, versions in grouped.items()]


def model_performance(connection: sa.Connection, model_name: str) -> dict | None:
    """A model's versions with their metrics on held-out courses: overall and per course week
    for every scorer judged (the candidates and the rule), per held-out course, and the
    trend across versions of the chosen candidate (overall and early-warning ROC AUC, ECE)."""
    if not plausible_key(model_name):
        return None
    versions = [_version(dict(row)) for row in connection.execute(
        sa.select(*REGISTRY_COLUMNS).where(registry.c.model_name == model_name).order_by(registry.c.model_version)
    ).mappings()]
    if not versions:
        return None
    rows = connection.execute(
        sa.select(performance.c.model_version, performance.c.scorer, performance.c.course_id, performance.c.snapshot_week,
                  *(performance.c[name] for name in METRICS))
        .where(performance.c.model_name == model_name)
        .order_by(performance.c.model_version, performance.c.scorer, performance.c.course_id, performance.c.snapshot_week)
    ).mappings().all()
    by_version: dict[int, dict] = defaultdict(lambda: {"overall": [], "per_week": [], "per_course": []})
    for row in rows:
        metrics = {name: row[name] for name in METRICS}
        entry = {"scorer": row["scorer"], **metrics}
        held = by_version[row["model_version"]]
        if row["course_id"] == "all" and row["snapshot_week"] is None:
            held["overall"].append(entry)
        elif row["course_id"] == "all":
            held["per_week"].append({"week": row["snapshot_week"], **entry})
        else:
            held["per_course"].append({"course_id": row["course_id"], **entry})
    trend = []
    for version in versions:
        held = by_version[version["model_version"]]
        chosen = version["candidate"] or "catboost"  # versions before candidates were chosen: CatBoost
        overall = next((r for r in held["overall"] if r["scorer"] == chosen), None)
        early = [r["roc_auc"] for r in held["per_week"] if r["scorer"] == chosen and r["week"] in EARLY_WEEKS and r["roc_auc"] is not None]
        trend.append({
            "model_version": version["model_version"],
            "trained_at": version["trained_at"],
            "candidate": chosen,
            "roc_auc": overall["roc_auc"] if overall else None,
            "early_weeks_roc_auc": round(sum(early) / len(early), 4) if early else None,
            "calibration_error": overall["calibration_error"] if overall else None,
            "is_default": version["is_default"],
        })
    return {
        "model_name": model_name,
        "target": versions[-1]["target"],
        "versions": [{**version, **by_version[version["model_version"]]} for version in reversed(versions)],
        "trend": trend,
    }
