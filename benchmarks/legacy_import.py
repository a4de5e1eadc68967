"""Legacy V1 import throughput: 1,000,000 raw_data rows across 200 courses, MariaDB to PostgreSQL.

Generates a V1 database on MariaDB (legacy/generate.py, traps planted) and imports it into
a fresh, migrated PostgreSQL database with the verification included (the import reads
the target back and compares it per course and table before committing). Both databases
are created for the run and dropped after. Target: the import under 120 s. Exit status 1
when it is missed or the verification finds an unexplained difference.

    .venv/bin/python -m benchmarks.legacy_import [--courses 200 --learners 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import sqlalchemy as sa

from dropout_pipeline.legacy.generate import Shape, create_v1_database
from dropout_pipeline.legacy.importer import import_v1
from dropout_pipeline.storage.database import engine_for

MARIADB = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_SECONDS = 120.0


def _database(admin_url: str, name: str, create: bool) -> str:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if create:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        elif admin.dialect.name == "postgresql":
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        else:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    admin.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--courses", type=int, default=200)
    parser.add_argument("--learners", type=int, default=5000, help="per course")
    args = parser.parse_args()
    name = f"dp_bench_{uuid.uuid4().hex[:10]}"
    source_url, target_url = _database(MARIADB, name, True), _database(POSTGRES, name, True)
    try:
        started = time.perf_counter()
        truth = create_v1_database(source_url, Shape(courses=args.courses, learners=args.learners, side_tables=(), seed=3))
        generated = time.perf_counter() - started
        print(f"generated V1 raw_data on MariaDB: {truth.raw_rows:,} rows, {args.courses} courses "
              f"({len(truth.finished)} finished), {len(truth.quarantine)} faults planted, in {generated:.1f} s", flush=True)
        started = time.perf_counter()
        target = engine_for(target_url)
        migrated = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        report = import_v1(source_url, target)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        target.dispose()
        written = sum(report.written.values())
        print(f"migrated the PostgreSQL target in {migrated:.1f} s")
        print(f"import with verification: {seconds:.1f} s for {report.tables_read['raw_data']:,} raw_data rows "
              f"({report.tables_read['raw_data'] / seconds:,.0f} rows/s), {written:,} rows written "
              f"({', '.join(f'{t} {n:,}' for t, n in sorted(report.written.items()))}); "
              f"CPU of this process {cpu:.1f} s (the database servers' not counted; the machine's load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print("where the time went: " + ", ".join(f"{phase} {t:.1f} s" for phase, t in report.phases.items()))
        print(f"verification: {len(report.checks):,} course x table checks, {len(report.differences):,} differences "
              f"(all explained: {not report.unexplained}), {len(report.quarantine)} quarantined, {sum(report.repairs.values())} values repaired")
        print(f"target: under {TARGET_SECONDS:.0f} s: {'met' if seconds < TARGET_SECONDS else 'MISSED'}")
        return 0 if seconds < TARGET_SECONDS and not report.unexplained else 1
    finally:
        _database(MARIADB, name, False)
        _database(POSTGRES, name, False)


if __name__ == "__main__":
    sys.exit(main())
