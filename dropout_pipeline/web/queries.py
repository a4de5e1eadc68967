"""Every read the web app makes, in SQLAlchemy Core (no SQL is ever built from input: values
are bound parameters, and sorts and filters are chosen from fixed sets).

Reads only: the web app writes tokens, sessions and feedback (storage.web_tables), never
a prediction, a feature or a training row.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa

from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.features.dictionary import FEATURES
from dropout_pipeline.lifecycle.plan import state_of
from dropout_pipeline.modeling.metrics import worklist_size
from dropout_pipeline.predictions.queries import WORKLIST_ORDER, worklist_share
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.model_tables import model_for_course, model_label
from dropout_pipeline.storage.web_tables import LATEST_FEEDBACK, LATEST_FEEDBACK_COLUMNS, Principal, feedback_entry, latest_feedback_id

p, e, f, c = schema.predictions, schema.enrollments, schema.student_features, schema.courses
registry, performance = schema.model_registry, schema.model_performance

LEVELS = ("HIGH", "MEDIUM", "LOW")
NOT_PREDICTED = "NONE"  # the level filter's name for learners without a prediction yet
SORTS = ("risk", "dropout_risk", "change", "name", "user_id")
WEEK = timedelta(days=7)
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


# --- A course's risk list ------------------------------------------------------------------


def latest_run_date(connection: sa.Connection, course_id: str) -> date | None:
    """The day the course's latest predictions describe."""
    return connection.execute(sa.select(sa.func.max(p.c.snapshot_date)).where(p.c.is_latest == sa.true(), p.c.course_id == course_id)).scalar()


def _previous(course_id: str, on_or_before: date) -> sa.Subquery:
    """Each learner's newest prediction made on or before a day: what "last week" said
    (for every learner of the course at once: the sort by change)."""
    return sa.select(
        p.c.user_id,
        p.c.fail_risk_score.label("previous_score"),
        sa.func.row_number().over(partition_by=p.c.user_id, order_by=(p.c.snapshot_date.desc(), p.c.id.desc())).label("newest"),
    ).where(p.c.course_id == course_id, p.c.snapshot_date <= on_or_before).subquery("previous")


def _previous_id(course_id: str, user_id: sa.ColumnElement, on_or_before: date) -> sa.ScalarSelect:
    """The id of one learner's newest prediction made on or before a day: a look-up by key
    (course, learner, day) for each learner of a page."""
    older = p.alias("older")
    return (
        sa.select(older.c.id)
        .where(older.c.course_id == course_id, older.c.user_id == user_id, older.c.snapshot_date <= on_or_before)
        .order_by(older.c.snapshot_date.desc(), older.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


STUDENT_COLUMNS = (
    e.c.user_id, e.c.username, e.c.full_name, e.c.email, e.c.is_active,
    p.c.id.label("prediction_id"), p.c.fail_risk_score, p.c.dropout_risk_score, p.c.risk_level, p.c.reasons, p.c.dropout_reasons,
    p.c.snapshot_date, p.c.snapshot_grade, p.c.snapshot_completion_rate, p.c.predicted_at, p.c.model_name, p.c.model_version,
)
STUDENT_FIELDS = tuple(column.name for column in STUDENT_COLUMNS)
PREVIOUS = p.alias("previous_prediction")
PREVIOUS_COLUMNS = (PREVIOUS.c.fail_risk_score.label("previous_score"), PREVIOUS.c.risk_level.label("previous_level"),
                    PREVIOUS.c.snapshot_date.label("previous_date"))


class RunCache:
    """What a course's prediction runs settle, kept per process until they change: its
    statistics, the counts per level, the worklist. The key is read on every request (two
    index look-ups): the newest prediction time, the learners enrolled and the mapping's
    last change, so a new run, a new enrolment or a new worklist share is seen at once."""

    def __init__(self, size: int = 512):
        self.size, self._lock, self._entries = size, threading.Lock(), OrderedDict()

    @staticmethod
    def marker(connection: sa.Connection, course_id: str) -> tuple:
        m = schema.course_model_mapping
        return tuple(connection.execute(sa.select(
            sa.select(sa.func.max(p.c.predicted_at)).where(p.c.course_id == course_id).scalar_subquery(),
            sa.select(sa.func.count()).select_from(e).where(e.c.course_id == course_id).scalar_subquery(),
            sa.select(sa.func.max(m.c.updated_at)).where(m.c.course_id == course_id).scalar_subquery(),
        )).one())

    def get(self, connection: sa.Connection, kind: str, course_id: str, compute):
        key = (kind, course_id, self.marker(connection, course_id))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


NO_CACHE = None


def _enrolled() -> sa.ColumnElement[bool]:
    """A prediction's learner is enrolled in its course, checked row by row (a scalar look-up,
    which planners do not turn into a join): a ranking index is read in order and stops at
    the rows asked for. As a join, PostgreSQL underestimates how many of a course's
    predictions have an enrolment and sorts them all."""
    return sa.select(e.c.user_id).where(e.c.user_id == p.c.user_id, e.c.course_id == p.c.course_id).scalar_subquery().is_not(None)


def _course_facts(connection: sa.Connection, course_id: str) -> dict:
    """Counts per level (NONE: enrolled, not predicted), the latest run's day and the worklist."""
    latest = sa.and_(p.c.user_id == e.c.user_id, p.c.course_id == e.c.course_id, p.c.is_latest == sa.true())
    counts = {level or NOT_PREDICTED: n for level, n in connection.execute(
        sa.select(p.c.risk_level, sa.func.count()).select_from(e.outerjoin(p, latest)).where(e.c.course_id == course_id).group_by(p.c.risk_level)
    )}
    share = worklist_share(connection, course_id)
    length = worklist_size(sum(counts.get(level, 0) for level in LEVELS), share)
    members = frozenset(connection.execute(
        sa.select(p.c.user_id).where(p.c.course_id == course_id, p.c.is_latest == sa.true(), _enrolled()).order_by(*WORKLIST_ORDER).limit(length)
    ).scalars()) if length else frozenset()
    return {"counts": counts, "run_date": latest_run_date(connection, course_id), "share": share, "length": length, "members": members}


PREDICTION_SORTS = {"risk": p.c.fail_risk_score, "dropout_risk": p.c.dropout_risk_score}


def _ordered(key: sa.ColumnElement, descending: bool, learner: sa.ColumnElement) -> tuple:
    """A list's order: by the key, learners without a value last whichever the direction,
    ties by learner."""
    return key.is_(None), key.desc() if descending else key.asc(), learner


def _page_by_prediction(
    course_id: str, wanted: set[str], counts: dict[str, int], key: sa.ColumnElement, descending: bool, page: int, page_size: int,
) -> sa.Subquery | None:
    """A page sorted by a score: the predicted learners in the order of the course's latest
    predictions (read from the ranking index, stopping at the page; a learner with no such
    score last), then those not predicted yet, by learner. The counts per level say where
    the first part ends."""
    offset = (page - 1) * page_size
    chosen = [level for level in LEVELS if level in wanted]
    predicted = sum(counts.get(level, 0) for level in chosen)
    parts = []
    if chosen and offset < predicted:
        level_filter = p.c.risk_level.in_(chosen) if len(chosen) < len(LEVELS) else sa.true()
        parts.append(
            sa.select(p.c.user_id, p.c.id, sa.literal_column("0", sa.Integer).label("tier"), key.label("sort_key"))
            .where(p.c.course_id == course_id, p.c.is_latest == sa.true(), level_filter, _enrolled())
            .order_by(*(_ordered(key, descending, p.c.user_id) if key.nullable else (key.desc() if descending else key.asc(), p.c.user_id)))
            .limit(page_size).offset(offset)
            .subquery("predicted")
        )
    if NOT_PREDICTED in wanted and offset + page_size > predicted:
        latest = sa.and_(p.c.user_id == e.c.user_id, p.c.course_id == e.c.course_id, p.c.is_latest == sa.true())
        parts.append(
            sa.select(e.c.user_id, p.c.id, sa.literal_column("1", sa.Integer).label("tier"), sa.cast(sa.null(), sa.Float).label("sort_key"))
            .select_from(e.outerjoin(p, latest))
            .where(e.c.course_id == course_id, p.c.id.is_(None))
            .order_by(e.c.user_id)
            .limit(page_size - max(min(predicted - offset, page_size), 0)).offset(max(offset - predicted, 0))
            .subquery("not_predicted")
        )
    if not parts:  # past the last page
        return None
    return sa.union_all(*(sa.select(part) for part in parts)).subquery("page_of") if len(parts) > 1 else parts[0]


def _page_by_learner(
    course_id: str, wanted: set[str], sort: str, descending: bool, page: int, page_size: int, compared_with: date | None,
) -> sa.Subquery:
    """A page sorted by the learner (name, id) or by the change since last week: every
    enrolled learner of the chosen levels ranked at once."""
    latest = sa.and_(p.c.user_id == e.c.user_id, p.c.course_id == e.c.course_id, p.c.is_latest == sa.true())
    condition = e.c.course_id == course_id
    if wanted != {*LEVELS, NOT_PREDICTED}:
        matches = [p.c.risk_level.in_([level for level in LEVELS if level in wanted])]
        if NOT_PREDICTED in wanted:
            matches.append(p.c.id.is_(None))
        condition = sa.and_(condition, sa.or_(*matches))
    ranking = sa.select(e.c.user_id, p.c.id).select_from(e.outerjoin(p, latest)).where(condition)
    key = {"name": e.c.full_name, "user_id": e.c.user_id, "change": p.c.fail_risk_score}[sort]
    if sort == "change" and compared_with is not None:
        previous = _previous(course_id, compared_with)
        ranking = ranking.outerjoin(previous, sa.and_(previous.c.user_id == e.c.user_id, previous.c.newest == 1))
        key = p.c.fail_risk_score - previous.c.previous_score
    return (
        ranking.add_columns(sa.literal_column("0", sa.Integer).label("tier"), key.label("sort_key"))
        .order_by(*_ordered(key, descending, e.c.user_id))
        .limit(page_size).offset((page - 1) * page_size)
        .subquery("page_of")
    )


def _page_rows(connection: sa.Connection, course_id: str, page_of: sa.Subquery, descending: bool, compared_with: date | None) -> list:
    """A page's rows in full, in its order (by tier: for a sort by score, the predicted
    before the others), each looked up by key: the learner, the prediction, the one a
    week before it and the latest feedback (one statement, whatever the page size)."""
    previous_id = _previous_id(course_id, page_of.c.user_id, compared_with).correlate(page_of) if compared_with else sa.null()
    return connection.execute(
        sa.select(*STUDENT_COLUMNS, *PREVIOUS_COLUMNS, *LATEST_FEEDBACK_COLUMNS)
        .select_from(
            page_of.join(e, sa.and_(e.c.user_id == page_of.c.user_id, e.c.course_id == course_id))
            .outerjoin(p, p.c.id == page_of.c.id)
            .outerjoin(PREVIOUS, sa.and_(p.c.id.is_not(None), PREVIOUS.c.id == previous_id))
            .outerjoin(LATEST_FEEDBACK, LATEST_FEEDBACK.c.id == latest_feedback_id(course_id, page_of.c.user_id).correlate(page_of))
        )
        .order_by(page_of.c.tier, *_ordered(page_of.c.sort_key, descending, page_of.c.user_id))
    ).mappings().all()


def students_page(
    connection: sa.Connection, course_id: str, levels: Sequence[str], sort: str, descending: bool, page: int, page_size: int,
    cache: RunCache | None = NO_CACHE,
) -> dict:
    """A page of the course's enrolled learners with their latest prediction, its reasons,
    its change since the previous week and whether it is on the worklist. A learner not
    predicted yet has no score (None), never a stand-in.

    "The previous week" is the learner's newest prediction made on or before seven days
    before the course's latest predictions; the change is the difference in points."""
    facts = cache.get(connection, "facts", course_id, lambda: _course_facts(connection, course_id)) if cache else _course_facts(connection, course_id)
    wanted = set(levels or (*LEVELS, NOT_PREDICTED))
    total = sum(facts["counts"].get(level, 0) for level in wanted)
    run_date = facts["run_date"]
    compared_with = run_date - WEEK if run_date else None
    if sort in PREDICTION_SORTS:
        page_of = _page_by_prediction(course_id, wanted, facts["counts"], PREDICTION_SORTS[sort], descending, page, page_size)
    else:
        page_of = _page_by_learner(course_id, wanted, sort, descending, page, page_size, compared_with)
    rows = _page_rows(connection, course_id, page_of, descending, compared_with) if page_of is not None else []
    on_list = facts["members"]

    students = []
    for row in rows:
        student = {name: row[name] for name in STUDENT_FIELDS}
        predicted = row["prediction_id"] is not None
        earlier = row["previous_score"] is not None
        students.append({
            **student,
            "predicted": predicted,
            "status": "predicted" if predicted else "not predicted yet",
            "model": model_label(student) if predicted else None,
            "previous": {"fail_risk_score": row["previous_score"], "risk_level": row["previous_level"], "snapshot_date": row["previous_date"]} if earlier else None,
            "change": round(row["fail_risk_score"] - row["previous_score"], 2) if earlier else None,
            "on_worklist": row["user_id"] in on_list,
            "latest_feedback": feedback_entry(row),
        })
    return {
        "course_id": course_id,
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": max(1, -(-total // page_size)),
        "latest_predictions_on": run_date,
        "compared_with_on_or_before": compared_with,
        "worklist": {"share": facts["share"], "length": facts["length"]},
        "students": students,
    }


def all_students(connection: sa.Connection, course_id: str, levels: Sequence[str], sort: str, descending: bool, chunk: int = 1000):
    """Every page of the list, one after another (the CSV export)."""
    page, cache = 1, RunCache(size=4)  # the same facts for every page of this export
    while True:
        listed = students_page(connection, course_id, levels, sort, descending, page, chunk, cache)
        yield from listed["students"]
        if page >= listed["pages"]:
            return
        page += 1


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
