"""A course's risk list: every enrolled learner with the latest prediction, its reasons, its
change since the previous week, its place on the worklist and the latest feedback; a page
at a time (the API, the pages) or all of it (the CSV). Reads only, in SQLAlchemy Core:
sorts and filters are chosen from fixed sets, values are bound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa

from dropout_pipeline.modeling.metrics import worklist_size
from dropout_pipeline.predictions.queries import WORKLIST_ORDER, worklist_share
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.model_tables import model_label
from dropout_pipeline.storage.web_tables import LATEST_FEEDBACK, LATEST_FEEDBACK_COLUMNS, feedback_entry, latest_feedback_id
from dropout_pipeline.web.run_cache import NO_CACHE, RunCache

p, e = schema.predictions, schema.enrollments

LEVELS = ("HIGH", "MEDIUM", "LOW")
NOT_PREDICTED = "NONE"  # the level filter's name for learners without a prediction yet
SORTS = ("risk", "dropout_risk", "change", "name", "user_id")
WEEK = timedelta(days=7)

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
