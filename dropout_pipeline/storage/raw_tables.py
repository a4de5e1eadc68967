"""Reading and replacing a course's raw ingestion tables."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import read_frame, replace_rows, upsert_row


def replace_course_tables(connection: sa.Connection, course_id: str, tables: dict[str, list[dict]]) -> dict[str, int]:
    """Swap in a course's new pull of the given tables, inside the caller's transaction."""
    return {name: replace_rows(connection, schema.RAW_TABLES[name], {"course_id": course_id}, rows) for name, rows in tables.items()}


def upsert_course(connection: sa.Connection, row: dict) -> None:
    upsert_row(connection, schema.courses, row)


def read_raw_columns(connection: sa.Connection, columns: dict[str, list[str]], course_id: str | None = None) -> dict[str, pd.DataFrame]:
    """The given columns of the given raw tables (plus the learner key), for one course or all."""
    frames = {}
    for name, wanted in columns.items():
        table = schema.RAW_TABLES[name]
        query = sa.select(table.c.user_id, table.c.course_id, *(table.c[c] for c in wanted))
        frames[name] = read_frame(connection, query if course_id is None else query.where(table.c.course_id == course_id))
    return frames


def read_course(connection: sa.Connection, course_id: str) -> dict | None:
    row = connection.execute(sa.select(schema.courses).where(schema.courses.c.course_id == course_id)).mappings().first()
    return dict(row) if row else None


def course_ids_of_org(connection: sa.Connection, org: str) -> list[str]:
    return list(connection.execute(sa.select(schema.courses.c.course_id).where(schema.courses.c.org == org)).scalars())


def first_enrolment_in(connection: sa.Connection, course_id: str) -> datetime | None:
    table = schema.enrollments
    return connection.execute(sa.select(sa.func.min(table.c.created)).where(table.c.course_id == course_id)).scalar()


def enrolled_user_ids(connection: sa.Connection, course_id: str) -> list[int]:
    table = schema.enrollments
    return list(connection.execute(sa.select(table.c.user_id).where(table.c.course_id == course_id).order_by(table.c.user_id)).scalars())


def tables_as_frames(tables: dict[str, list[dict]]) -> dict[str, pd.DataFrame]:
    """A pull's rows as frames shaped like the stored tables (empty pulls keep their columns)."""
    return {
        name: pd.DataFrame(rows, columns=[c.name for c in schema.RAW_TABLES[name].columns if c.name != "id"])
        for name, rows in tables.items()
    }


RAW_TABLE_NAMES: list[str] = list(schema.RAW_TABLES)
