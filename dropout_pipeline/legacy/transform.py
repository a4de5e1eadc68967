"""From V1 rows to the product's rows: cleaning each value, quarantining what cannot be
imported, and the mapping of every V1 table onto the product's tables.

Cleaning, by the column's kind (contract.py):
- text: repaired where mis-decoded (text.py);
- dates: '0000-00-00' (pymysql hands it over as a string, or None), unparseable dates and
  impossible ones (before 1990, or after the import) become NULL;
- percentages (0-100) and shares (0-1) outside their range, a missing course key, a key
  (learner and course, and content for the H5P tables) held by several rows, and a NULL
  where the product requires a value: the row is not imported but quarantined with why.
  Identical duplicates keep their first row (lowest id) and quarantine the copies; rows
  sharing a key with different values are all quarantined (which is right is not known).

Where raw_data's rows go (per course: a course is finished when any of its rows has both
labels, `mooc_is_passed` and `is_dropout`):
- a row with `fail_risk_score` -> a prediction of model `legacy-v1` (version 1): its scores,
  its risk level derived by today's thresholds (predictions.score.RiskLevels), `predicted_at`
  and snapshot date from the row; it is the latest only where no newer prediction exists;
- a labelled row of a finished course -> training_data, snapshot_kind 'end_of_course',
  snapshot_week 0 (V1 kept no course calendar), snapshot_date the row's `updated_at`;
- a row of a running course -> student_features, until the first live refresh replaces them.
Columns the product has and V1 never had stay NULL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime
from hashlib import blake2b
import re
from typing import Any

import sqlalchemy as sa

from dropout_pipeline.legacy.contract import BOOL, DATETIME, FLOAT, INT, JSON, PCT, RATE, TEXT, V1Table
from dropout_pipeline.legacy.text import repair_text
from dropout_pipeline.storage import schema

DATE = "date"
LEGACY_MODEL = "legacy-v1"
LEGACY_MODEL_VERSION = 1
EARLIEST_DATE = datetime(1990, 1, 1)
NULL = "\\N"

# Reasons a row (or a part of it) is quarantined.
NO_COURSE, DUPLICATE, DUPLICATE_KEY, OUT_OF_RANGE, MISSING_VALUE = "no_course", "duplicate", "duplicate_key", "out_of_range", "missing_value"
# Kinds of repair, as counted in the report.
TEXT_REPAIRED, ZERO_DATE, IMPOSSIBLE_DATE = "text_repaired", "zero_or_invalid_date", "impossible_date"


# --- Values ------------------------------------------------------------------------------

def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _datetime(value: Any, latest: datetime) -> tuple[datetime | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None, ZERO_DATE  # '0000-00-00 00:00:00', '2024-02-30', ...
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value < EARLIEST_DATE or value > latest:
        return None, IMPOSSIBLE_DATE
    return value, None


@dataclass
class Cleaned:
    """One source row after cleaning: the values, what was repaired, and any fault."""

    values: dict[str, Any]
    repairs: list[tuple[str, str]] = field(default_factory=list)  # (column, kind of repair)
    suspect: list[str] = field(default_factory=list)  # text columns still mis-decoded
    fault: tuple[str, str] | None = None  # (reason, detail): the whole row is quarantined


def clean_row(table: V1Table, raw: dict[str, Any], latest: datetime) -> Cleaned:
    values: dict[str, Any] = {}
    cleaned = Cleaned(values)
    for name, kind in table.columns.items():
        value = raw[name]
        if kind == TEXT and value is not None:
            repair = repair_text(value)
            if repair.repaired:
                cleaned.repairs.append((name, TEXT_REPAIRED))
            if repair.suspect:
                cleaned.suspect.append(name)
            value = repair.value
        elif kind == DATETIME:
            value, repaired = _datetime(value, latest)
            if repaired:
                cleaned.repairs.append((name, repaired))
        elif kind in (PCT, RATE, FLOAT):
            value = _number(value)
            top = 100.0 if kind == PCT else 1.0
            if kind != FLOAT and value is not None and not 0.0 <= value <= top and cleaned.fault is None:
                cleaned.fault = (OUT_OF_RANGE, f"{name} = {value:g} is outside 0-{top:g}")
        elif kind == BOOL:
            value = None if value is None else bool(value)
        elif kind == INT:
            value = None if value is None else int(value)
        elif kind == JSON and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass  # kept as the text it is
        values[name] = value
    return cleaned


# --- Content checksums --------------------------------------------------------------------

def _canon_float(value: Any) -> str:
    return NULL if value is None else "%.6g" % value  # six significant digits: MariaDB's FLOAT keeps about seven


def _canon_int(value: Any) -> str:
    return NULL if value is None else str(int(value))


def _canon_bool(value: Any) -> str:
    return NULL if value is None else ("1" if value else "0")


def _canon_datetime(value: Any) -> str:
    # str() of a datetime without microseconds is 'YYYY-MM-DD HH:MM:SS', as MariaDB writes it
    return NULL if value is None else str(value.replace(microsecond=0) if isinstance(value, datetime) else value)


def _canon_date(value: Any) -> str:
    return NULL if value is None else str(value)[:10]


def _canon_json(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _canon_text(value: Any) -> str:
    return NULL if value is None else str(value)


CANON: dict[str, Callable[[Any], str]] = {
    FLOAT: _canon_float, PCT: _canon_float, RATE: _canon_float, INT: _canon_int, BOOL: _canon_bool,
    DATETIME: _canon_datetime, DATE: _canon_date, JSON: _canon_json, TEXT: _canon_text, "key": _canon_text,
}


def canon(kind: str, value: Any) -> str:
    """A value in one text form whatever the engine returned (Decimal or float, 0/1 or bool,
    JSON text or object), so source and target checksums compare like with like."""
    return CANON[kind](value)


def row_hash(values: Sequence[str]) -> int:
    return int.from_bytes(blake2b("\x1f".join(values).encode(), digest_size=8).digest(), "big")


MASK = (1 << 64) - 1


@dataclass
class Sum:
    """An order-free content checksum: the count and the sum of the rows' hashes mod 2^64."""

    count: int = 0
    checksum: int = 0

    def add(self, digest: int) -> None:
        self.count += 1
        self.checksum = (self.checksum + digest) & MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sum) and (self.count, self.checksum) == (other.count, other.checksum)

    @property
    def hex(self) -> str:
        return f"{self.checksum:016x}"


# --- Targets ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    target: str
    source: str  # the V1 column it comes from
    kind: str  # how it is compared (DATE: the date of a source datetime)


@dataclass(frozen=True)
class Target:
    """Where rows of one V1 table go: a product table, its columns (compared by the
    verification), the constant columns (not compared), the key that makes a re-run
    insert nothing, and what marks the target's imported rows."""

    name: str
    source: str
    table: sa.Table
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # besides course_id
    part: str = "row"  # the part of a source row it needs unquarantined
    constants: Callable[[datetime], dict[str, Any]] = lambda _now: {}
    marker: Callable[[sa.Table], sa.ColumnElement[bool]] | None = None

    @cached_property
    def _plan(self) -> tuple:
        sources = tuple(c.source for c in self.columns)
        dates = tuple(i for i, c in enumerate(self.columns) if c.kind == DATE)
        ints = tuple(i for i, c in enumerate(self.columns) if c.kind == BOOL and isinstance(self.table.c[c.target].type, sa.Integer))
        return sources, dates, ints, tuple(CANON[c.kind] for c in self.columns)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The target table's columns, in the order of `values`."""
        return tuple(c.target for c in self.columns)

    @cached_property
    def source_columns(self) -> frozenset[str]:
        return frozenset(c.source for c in self.columns)

    @cached_property
    def key_positions(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c.target in self.key)

    @cached_property
    def required_positions(self) -> tuple[int, ...]:
        """Where the values the product requires (NOT NULL) are."""
        return tuple(self.columns.index(c) for c in required_columns(self))

    def values(self, row: dict[str, Any]) -> list[Any]:
        """The target's values of a row, in the target's types (a date of a datetime, 0/1 of a
        bool for an integer column); values a cleaning left as they were pass through."""
        sources, dates, ints, _canons = self._plan
        out = [row[name] for name in sources]
        for i in dates:
            if isinstance(out[i], datetime):
                out[i] = out[i].date()
        for i in ints:
            if isinstance(out[i], bool):
                out[i] = int(out[i])
        return out

    def digest(self, values: Sequence[Any]) -> int:
        return row_hash([f(v) for f, v in zip(self._plan[3], values)])


def _cols(*pairs: tuple[str, str, str] | Column) -> tuple[Column, ...]:
    return tuple(p if isinstance(p, Column) else Column(*p) for p in pairs)


FEATURE_COLUMNS = _cols(
    ("mooc_grade_percentage", "mooc_grade_percentage", FLOAT), ("mooc_letter_grade", "mooc_letter_grade", TEXT),
    ("mooc_is_passed", "mooc_is_passed", BOOL), ("progress_percent", "progress_percent", FLOAT),
    ("mooc_completion_rate", "mooc_completion_rate", FLOAT), ("h5p_total_contents", "h5p_total_contents", INT),
    ("video_total_videos", "video_total_videos", INT), ("discussion_threads_count", "discussion_threads_count", INT),
    ("discussion_comments_count", "discussion_comments_count", INT),
    ("discussion_total_interactions", "discussion_total_interactions", INT),
    ("days_since_last_activity", "days_since_last_activity", FLOAT),
)

PREDICTIONS = Target(
    "predictions", "raw_data", schema.predictions,
    _cols(("user_id", "user_id", INT), ("predicted_at", "predicted_at", DATETIME), ("snapshot_date", "predicted_at", DATE),
          ("fail_risk_score", "fail_risk_score", FLOAT), ("dropout_risk_score", "dropout_risk_score", FLOAT),
          ("snapshot_grade", "mooc_grade_percentage", FLOAT), ("snapshot_completion_rate", "mooc_completion_rate", FLOAT)),
    key=("user_id", "predicted_at"),
    part="prediction",
    constants=lambda _now: {"model_name": LEGACY_MODEL, "model_version": LEGACY_MODEL_VERSION, "reasons": [], "dropout_reasons": None},
    marker=lambda t: t.c.model_name == LEGACY_MODEL,
)

TRAINING = Target(
    "training_data", "raw_data", schema.training_data,
    _cols(("user_id", "user_id", INT), ("snapshot_date", "updated_at", DATE), *FEATURE_COLUMNS,
          ("is_passed", "mooc_is_passed", BOOL), ("is_dropout", "is_dropout", BOOL), ("final_grade", "mooc_grade_percentage", FLOAT)),
    key=("user_id", "snapshot_date"),
    constants=lambda now: {"snapshot_week": 0, "snapshot_kind": "end_of_course", "created_at": now},
    marker=lambda t: t.c.snapshot_kind == "end_of_course",
)

FEATURES = Target(
    "student_features", "raw_data", schema.student_features,
    _cols(("user_id", "user_id", INT), ("snapshot_date", "updated_at", DATE), ("updated_at", "updated_at", DATETIME), *FEATURE_COLUMNS),
    key=("user_id",),
)


def _side(name: str, pairs: tuple[tuple[str, str, str], ...], fetched_from_source: bool = False) -> Target:
    table = schema.RAW_TABLES[name]
    key = ("user_id", "content_id") if "content_id" in table.c else ("user_id",)
    return Target(
        name, name, table, _cols(("user_id", "user_id", INT), *pairs), key=key,
        constants=(lambda _now: {}) if fetched_from_source else (lambda now: {"fetched_at": now}),
    )


SIDE_TARGETS = {
    t.name: t
    for t in (
        _side("enrollments", (("enrollment_id", "enrollment_id", INT), ("username", "username", TEXT), ("email", "email", TEXT),
                              ("full_name", "full_name", TEXT), ("mode", "mode", TEXT), ("is_active", "is_active", BOOL),
                              ("created", "created", DATETIME), ("attributes", "all_attributes", JSON))),
        _side("mooc_grades", (("percent_grade", "percent_grade", FLOAT), ("letter_grade", "letter_grade", TEXT),
                              ("is_passed", "is_passed", BOOL), ("fetched_at", "fetched_at", DATETIME)), fetched_from_source=True),
        _side("mooc_progress", (("total_blocks", "total_blocks", INT), ("completed_blocks", "completed_blocks", INT),
                                ("progress_percent", "progress_percent", FLOAT), ("current_chapter", "current_chapter", TEXT),
                                ("current_section", "current_section", TEXT), ("current_unit", "current_unit", TEXT),
                                ("completion_rate", "completion_rate", FLOAT), ("last_activity", "last_activity", DATETIME))),
        _side("mooc_discussions", (("threads_count", "threads_count", INT), ("comments_count", "comments_count", INT),
                                   ("total_interactions", "total_interactions", INT), ("questions_count", "questions_count", INT),
                                   ("total_upvotes", "total_upvotes", INT), ("fetched_at", "fetched_at", DATETIME)), fetched_from_source=True),
        _side("h5p_scores", (("content_id", "content_id", INT), ("content_title", "content_title", TEXT), ("score", "score", FLOAT),
                             ("max_score", "max_score", FLOAT), ("percentage", "percentage", FLOAT))),
        _side("video_progress", (("content_id", "content_id", INT), ("content_title", "content_title", TEXT),
                                 ("progress_percent", "progress_percent", FLOAT), ("current_time", "current_time", INT),
                                 ("duration", "duration", INT), ("status", "status", TEXT))),
        _side("dashboard_summary", (("overall_completion", "overall_completion", FLOAT), ("total_items", "total_items", INT),
                                    ("completed_items", "completed_items", INT), ("h5p_total_contents", "h5p_total_contents", INT),
                                    ("video_total_videos", "video_total_videos", INT))),
    )
}

# V1 columns no product column holds, and where the raw_data view takes them from instead.
NOT_CARRIED = {
    "raw_data.id": "the view numbers its rows",
    "raw_data.enrollment_date": "the view gives enrollments.created",
    "raw_data.current_chapter, current_section, current_unit": "the view gives mooc_progress's",
    "raw_data.risk_level": "derived again by today's thresholds",
    "mooc_grades.grade_percentage": "a copy of percent_grade in V1",
}


def required_columns(target: Target) -> list[Column]:
    """The target's columns the product requires (NOT NULL) that come from the source."""
    return [c for c in target.columns if not target.table.c[c.target].nullable]


def semester_of(course_id: str, snapshot: date) -> str:
    """The run part of the course key when it names a year (as features.calendar), else the
    half-year of the end-of-course snapshot."""
    run = course_id.rsplit("+", 1)[-1]
    if re.match(r"^(19|20)\d\d", run):
        return run
    return f"{snapshot.year}_S{1 if snapshot.month < 7 else 2}"


@dataclass
class Quarantined:
    source_table: str
    source_id: int
    part: str
    reason: str
    detail: str
    course_id: str | None
    user_id: int | None
    source_values: dict[str, str]


def source_values(table: V1Table, raw: dict[str, Any]) -> dict[str, str]:
    return {name: canon(kind, raw[name]) for name, kind in table.columns.items()}


def find_duplicates(table: V1Table, group: list[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """Among rows sharing one key: id -> (reason, detail) for those not imported."""
    if len(group) < 2:
        return {}
    key = ", ".join(f"{k} = {group[0][k]!r}" for k in table.key)
    first, ids = group[0], [r["id"] for r in group]
    same = [all(r[c] == first[c] for c in table.columns if c != "id") for r in group[1:]]
    if all(same):
        return {r["id"]: (DUPLICATE, f"identical to {table.name} id {first['id']} ({key})") for r in group[1:]}
    return {r["id"]: (DUPLICATE_KEY, f"{key} is held by ids {ids} with different values") for r in group}

