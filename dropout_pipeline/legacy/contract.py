"""The V1 schema this importer reads, and the check that a source database matches it.

The contract is the legacy ERD (`../shared/seeds/002_…`) plus the `raw_data` columns the V1
code and the V2 refactor guide relied on (`fail_risk_score`, `risk_level`, `predicted_at`,
`updated_at`, `days_since_last_activity`). Each column has a kind that says how its values
are cleaned (`transform.py`) and which SQL types the reflected column may have.

The check runs on SQLAlchemy's reflection of the source before a single row is read or
written. It fails, naming what is missing, when `raw_data` is absent, lacks a column, has a
column of the wrong type, or when the database is another version: an earlier V1 (before
the MOOC export APIs: none of the columns the ERD marks NEW) or a V2 database (already
split into student_features, predictions and training_data by `migrate_to_v2.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

# Kinds of values. pct: a percentage 0-100; rate: a share 0-1; both quarantine the row when
# outside. key: the course key (a row without one is quarantined).
INT, FLOAT, PCT, RATE, BOOL, TEXT, DATETIME, JSON, KEY = "int", "float", "pct", "rate", "bool", "text", "datetime", "json", "key"

_TYPES: dict[str, tuple[type, ...]] = {
    INT: (sa.Integer,),
    FLOAT: (sa.Numeric, sa.Float, sa.Integer),
    PCT: (sa.Numeric, sa.Float, sa.Integer),
    RATE: (sa.Numeric, sa.Float),
    BOOL: (sa.Boolean, sa.Integer),  # MariaDB's BOOLEAN is TINYINT(1)
    TEXT: (sa.String, sa.Text),
    DATETIME: (sa.DateTime, sa.Date, sa.String),
    JSON: (sa.JSON, sa.Text, sa.String),
    KEY: (sa.String,),
}


@dataclass(frozen=True)
class V1Table:
    name: str
    columns: dict[str, str]  # V1 column -> kind, `id` first
    key: tuple[str, ...]  # what makes a row unique (user, course[, content])
    required: bool = False  # raw_data must exist; the side tables are imported where present
    new_in_erd: tuple[str, ...] = field(default=())  # columns the ERD marks NEW: absent all together = an earlier V1


RAW_DATA = V1Table(
    "raw_data",
    {
        "id": INT, "user_id": INT, "course_id": KEY, "enrollment_date": DATETIME,
        "mooc_grade_percentage": PCT, "mooc_letter_grade": TEXT, "mooc_is_passed": BOOL, "progress_percent": PCT,
        "current_chapter": TEXT, "current_section": TEXT, "current_unit": TEXT, "mooc_completion_rate": RATE,
        "h5p_total_contents": INT, "video_total_videos": INT, "discussion_threads_count": INT,
        "discussion_comments_count": INT, "discussion_total_interactions": INT, "days_since_last_activity": FLOAT,
        "is_dropout": BOOL, "fail_risk_score": PCT, "dropout_risk_score": PCT, "risk_level": TEXT,
        "predicted_at": DATETIME, "updated_at": DATETIME,
    },
    key=("user_id", "course_id"),
    required=True,
    new_in_erd=(
        "mooc_grade_percentage", "mooc_letter_grade", "mooc_is_passed", "current_chapter", "current_section",
        "current_unit", "mooc_completion_rate", "discussion_threads_count", "discussion_comments_count",
        "discussion_total_interactions",
    ),
)

SIDE_TABLES = (
    V1Table("enrollments", {
        "id": INT, "course_id": KEY, "user_id": INT, "username": TEXT, "email": TEXT, "full_name": TEXT,
        "enrollment_id": INT, "mode": TEXT, "is_active": BOOL, "created": DATETIME, "all_attributes": JSON,
    }, key=("user_id", "course_id")),
    V1Table("mooc_grades", {
        "id": INT, "user_id": INT, "course_id": KEY, "percent_grade": PCT, "grade_percentage": PCT,
        "letter_grade": TEXT, "is_passed": BOOL, "fetched_at": DATETIME,
    }, key=("user_id", "course_id")),
    V1Table("mooc_progress", {
        "id": INT, "user_id": INT, "course_id": KEY, "total_blocks": INT, "completed_blocks": INT,
        "progress_percent": PCT, "current_chapter": TEXT, "current_section": TEXT, "current_unit": TEXT,
        "completion_rate": RATE, "last_activity": DATETIME,
    }, key=("user_id", "course_id")),
    V1Table("mooc_discussions", {
        "id": INT, "user_id": INT, "course_id": KEY, "threads_count": INT, "comments_count": INT,
        "total_interactions": INT, "questions_count": INT, "total_upvotes": INT, "fetched_at": DATETIME,
    }, key=("user_id", "course_id")),
    V1Table("h5p_scores", {
        "id": INT, "user_id": INT, "course_id": KEY, "content_id": INT, "content_title": TEXT, "score": INT,
        "max_score": INT, "percentage": PCT,
    }, key=("user_id", "course_id", "content_id")),
    V1Table("video_progress", {
        "id": INT, "user_id": INT, "course_id": KEY, "content_id": INT, "content_title": TEXT,
        "progress_percent": PCT, "current_time": INT, "duration": INT, "status": TEXT,
    }, key=("user_id", "course_id", "content_id")),
    V1Table("dashboard_summary", {
        "id": INT, "user_id": INT, "course_id": KEY, "overall_completion": PCT, "total_items": INT,
        "completed_items": INT, "h5p_total_contents": INT, "video_total_videos": INT,
    }, key=("user_id", "course_id")),
)

V1_TABLES = {t.name: t for t in (RAW_DATA, *SIDE_TABLES)}
V2_TABLES = ("student_features", "predictions", "training_data", "model_registry", "course_model_mapping")


class LegacySourceError(Exception):
    """The source cannot be imported: unreachable, or not the V1 schema. Raised before any write."""


@dataclass(frozen=True)
class SourceShape:
    """What the check found: the V1 tables present (raw_data always), in import order."""

    tables: tuple[V1Table, ...]
    absent: tuple[str, ...]  # side tables the source does not have (nothing to import)


def check_source(connection: sa.Connection) -> SourceShape:
    """Reflect the source and hold it to the contract; raise LegacySourceError naming every gap."""
    inspector = sa.inspect(connection)
    names = set(inspector.get_table_names())
    if RAW_DATA.name not in names:
        v2 = [t for t in V2_TABLES if t in names]
        if len(v2) >= 3:
            raise LegacySourceError(
                f"the source is a V2 database ({', '.join(v2)} present, no raw_data table): this importer reads "
                "the V1 schema, whose raw_data table holds features, labels and predictions together"
            )
        raise LegacySourceError("the source has no raw_data table: it is not a V1 database of the legacy system")
    problems: list[str] = []
    present = [RAW_DATA]
    absent = []
    for table in (RAW_DATA, *SIDE_TABLES):
        if table is not RAW_DATA and table.name not in names:
            absent.append(table.name)
            continue
        if table is not RAW_DATA:
            present.append(table)
        reflected = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c not in reflected]
        if table.new_in_erd and set(table.new_in_erd) <= set(missing):
            problems.append(
                f"{table.name} is of an earlier V1 version (before the MOOC export APIs): it lacks the columns "
                f"{', '.join(table.new_in_erd)}"
            )
            missing = [c for c in missing if c not in table.new_in_erd]
        if missing:
            problems.append(f"{table.name} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        for name, kind in table.columns.items():
            if name in reflected and not isinstance(reflected[name], _TYPES[kind]):
                problems.append(f"{table.name}.{name} is {reflected[name]}, where V1 has a {kind} column")
    if problems:
        raise LegacySourceError("the source does not match the V1 schema: " + "; ".join(problems))
    return SourceShape(tables=tuple(present), absent=tuple(absent))
