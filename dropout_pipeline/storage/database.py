"""Engines, schema migration, and the all-or-nothing writes every table goes through."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
import tenacity
from sqlalchemy.dialects import mysql, postgresql, sqlite
from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
DEFAULT_DATA_DIR = Path("data")

_migrated_urls: set[str] = set()
_migrate_lock = threading.Lock()
MIGRATION_LOCK_NAME = "dropout_pipeline_schema_migration"
MIGRATION_LOCK_KEY = 0x64726F706F7574  # PostgreSQL advisory locks take a bigint: "dropout" in ASCII
MIGRATION_LOCK_TIMEOUT_SECONDS = 300
SQLITE_BUSY_SECONDS = 60


def default_database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The embedded default: a SQLite file in the local data folder."""
    return f"sqlite:///{(data_dir / 'dropout_pipeline.db').resolve()}"


def create_db_engine(url: str, pool_size: int | None = None) -> sa.Engine:
    """An engine tuned for the three supported engines.

    SQLite gets a busy timeout and WAL so a reader (the Dagster UI's checks) never blocks
    the writer for long; MariaDB gets utf8mb4 so Vietnamese names survive. A server that
    serves `pool_size` requests at once keeps that many connections open (and as many
    again in overflow): past SQLAlchemy's default of 5, every further request would open
    a connection and close it again, and on PostgreSQL that is a new backend process
    (SQLite's connections are a file opened in-process: its pools stay as they are).
    """
    connect_args: dict[str, Any] = {}
    if url.startswith("sqlite"):
        Path(sa.make_url(url).database or ".").parent.mkdir(parents=True, exist_ok=True)
        connect_args["timeout"] = SQLITE_BUSY_SECONDS
    if url.startswith("mysql") or url.startswith("mariadb"):
        connect_args["charset"] = "utf8mb4"
    pool = {"pool_size": pool_size, "max_overflow": pool_size} if pool_size and not url.startswith("sqlite") else {}
    engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True, **pool)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


@tenacity.retry(
    retry=tenacity.retry_if_exception(lambda error: isinstance(error, sqlite3.OperationalError) and "locked" in str(error)),
    stop=tenacity.stop_after_delay(SQLITE_BUSY_SECONDS),
    wait=tenacity.wait_random_exponential(multiplier=0.05, max=1),
    reraise=True,
)
def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """WAL mode, waiting its turn: when processes open a fresh file at once, SQLite answers
    a second switch "database is locked" at once, without its busy timeout (it would
    deadlock), so the switch is tried again for as long as that timeout would wait."""
    cursor.execute("PRAGMA journal_mode=WAL")


_engines: dict[str, sa.Engine] = {}


def engine_for(url: str, pool_size: int | None = None) -> sa.Engine:
    """One migrated engine per URL and process: the schema is brought up to date on first use
    (`pool_size` applies to the engine this first use creates)."""
    with _migrate_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_db_engine(url, pool_size)
    upgrade_schema(engine)
    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_schema(engine: sa.Engine) -> None:
    """Bring the database to the newest migration (idempotent; once per process and URL).

    Any number of processes may start at once on a fresh database (the steps of a run,
    the daemon, the UI): each migrates under a database-wide lock, so the first does
    the work and the others find the schema up to date.
    """
    key = engine.url.render_as_string(hide_password=False)
    with _migrate_lock:
        if key in _migrated_urls:
            return
        with _holding_migration_lock(engine) as connection:
            command.upgrade(alembic_config(connection), "head")
        _migrated_urls.add(key)


@contextmanager
def _holding_migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection holding the database's migration lock; its work is committed at the end.

    SQLite: an exclusive transaction. PostgreSQL: a transaction-level advisory lock (DDL
    is transactional there, so the lock and the migration commit together). MariaDB and
    MySQL: a named session lock, since their DDL commits implicitly.
    """
    dialect = engine.dialect.name
    with engine.connect() as connection:
        if dialect == "sqlite":
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
        elif dialect == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        elif dialect in ("mysql", "mariadb"):
            granted = connection.execute(
                sa.text("SELECT GET_LOCK(:name, :timeout)"), {"name": MIGRATION_LOCK_NAME, "timeout": MIGRATION_LOCK_TIMEOUT_SECONDS}
            ).scalar()
            if granted != 1:
                raise TimeoutError(f"another process held the schema migration lock for {MIGRATION_LOCK_TIMEOUT_SECONDS} s")
        else:
            raise NotImplementedError(f"no migration lock written for the {dialect} dialect")
        try:
            yield connection
            connection.commit()
        finally:
            if dialect in ("mysql", "mariadb"):
                connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATION_LOCK_NAME})


def frame_records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a frame as plain dicts ready for an insert: missing values become None,
    numpy scalars Python scalars, timestamps `datetime` (some drivers match exact types)."""
    selected = frame if columns is None else frame[list(columns)]
    plain = selected.astype(object).where(selected.notna(), None)
    for name in selected.columns:
        if pd.api.types.is_datetime64_any_dtype(selected[name]):
            plain[name] = [None if pd.isna(v) else pd.Timestamp(v).to_pydatetime() for v in selected[name]]
    return plain.to_dict("records")


def bulk_insert(connection: sa.Connection, table: sa.Table, records: list[dict[str, Any]]) -> int:
    """Insert many rows inside the caller's transaction.

    On PostgreSQL (psycopg 3) rows go through COPY, several times faster than
    executemany for the 100,000-row prediction and ingestion batches; elsewhere they go
    through executemany in batches.
    """
    if not records:
        return 0
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        _copy_rows(connection, table, records)
    else:
        for start in range(0, len(records), 5000):
            connection.execute(table.insert(), records[start : start + 5000])
    return len(records)


def _copy_rows(connection: sa.Connection, table: sa.Table, records: list[dict[str, Any]]) -> None:
    from psycopg import sql
    from psycopg.types.json import Json

    columns = list(records[0])
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, sa.JSON)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for record in records:
            row = [record[c] for c in columns]
            for i in json_at:
                if row[i] is not None:
                    row[i] = Json(row[i])
            copy.write_row(row)


def replace_rows(
    connection: sa.Connection,
    table: sa.Table,
    where: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
) -> int:
    """Replace every row matching `where` with `rows`, inside the caller's transaction.

    Callers validate everything before they open the transaction, so a failure here
    rolls back to the previous rows: a course's data is never half-replaced.
    """
    condition = sa.and_(*(table.c[name] == value for name, value in where.items()))
    connection.execute(table.delete().where(condition))
    return bulk_insert(connection, table, list(rows))


def upsert_row(connection: sa.Connection, table: sa.Table, row: Mapping[str, Any]) -> None:
    """Insert the row, or update the one with its primary key, in one statement: two runs
    storing the same course at once (the catalogue and a course's refresh) both succeed,
    where a delete then an insert fails one of them on PostgreSQL and MariaDB."""
    keys = {column.name for column in table.primary_key.columns}
    changes = {name: value for name, value in row.items() if name not in keys}
    if connection.dialect.name in ("mysql", "mariadb"):
        statement = mysql.insert(table).values(**row).on_duplicate_key_update(**changes)
    else:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(table).values(**row).on_conflict_do_update(index_elements=sorted(keys), set_=changes)
    connection.execute(statement)


def read_frame(connection: sa.Connection, query: sa.Select | sa.TextClause, **params: Any) -> pd.DataFrame:
    """A query's rows as a frame whose column labels are plain `str`.

    read_sql keeps SQLAlchemy's `quoted_name` labels (a str subclass), which sklearn
    refuses as feature names.
    """
    frame = pd.read_sql(query, connection, params=params or None)
    frame.columns = [str(column) for column in frame.columns]
    return frame
