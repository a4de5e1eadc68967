"""The import: check the source, read it, clean it, write it, verify it, in that order.

Nothing is written before the source has passed the contract check (contract.py). The
writes go into one transaction on the product's database; the verification reads the
target back inside it, and any difference it cannot explain rolls everything back. A row
whose key the target already holds is never inserted again nor overwritten, so a second
import changes nothing, and a live refresh's rows are never replaced by legacy ones. A dry
run does all of it but the writes, and verifies what the target would hold.
"""

from __future__ import annotations

import gc
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import groupby

import numpy as np
import sqlalchemy as sa

from dropout_pipeline.clock import utc_now
from dropout_pipeline.legacy.compare import compare_with_ours
from dropout_pipeline.legacy.contract import RAW_DATA, V1Table, check_source
from dropout_pipeline.legacy.read import open_source, shown, stream_rows
from dropout_pipeline.legacy.report import ImportReport
from dropout_pipeline.legacy.transform import (
    FEATURES, MISSING_VALUE, NO_COURSE, PREDICTIONS, SIDE_TARGETS, TRAINING, Cleaned, Quarantined, Target, clean_row,
    find_duplicates, semester_of, source_values,
)
from dropout_pipeline.legacy.verify import Checks, read_back
from dropout_pipeline.predictions.score import RiskLevels
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert

FLUSH_ROWS = 50_000


class UnexplainedDifferences(Exception):
    def __init__(self, report: ImportReport):
        super().__init__(f"{len(report.unexplained)} unexplained differences: the import was rolled back")
        self.report = report


class _Existing:
    """What the target holds already, for the source's courses: the keys that make a re-run
    insert nothing, and each learner's latest prediction."""

    def __init__(self, connection: sa.Connection, course_ids: list[str], targets: list[Target]):
        self.keys: dict[str, set[tuple]] = {}
        self.latest: dict[tuple[str, int], tuple[int, datetime]] = {}
        self.quarantined: set[tuple[str, int, str]] = set()
        inspector = sa.inspect(connection)
        migrated = inspector.has_table(schema.legacy_quarantine.name)
        for target in targets:
            table, found = target.table, set()
            if migrated:
                for chunk in _chunks(course_ids):
                    query = sa.select(table.c.course_id, *(table.c[k] for k in target.key)).where(table.c.course_id.in_(chunk))
                    if target is PREDICTIONS:
                        query = query.where(target.marker(table))
                    found.update(tuple(r) for r in connection.execute(query))
            self.keys[target.name] = found
        if migrated:
            p, q = schema.predictions, schema.legacy_quarantine
            for chunk in _chunks(course_ids):
                query = sa.select(p.c.course_id, p.c.user_id, p.c.id, p.c.predicted_at).where(p.c.course_id.in_(chunk), p.c.is_latest.is_(True))
                for course_id, user_id, row_id, at in connection.execute(query):
                    self.latest[(course_id, user_id)] = (row_id, at)
            self.quarantined = {tuple(r) for r in connection.execute(sa.select(q.c.source_table, q.c.source_id, q.c.part))}


def _chunks(values: list, size: int = 500):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _course_ids(connection: sa.Connection, tables: tuple[V1Table, ...]) -> list[str]:
    quote = connection.dialect.identifier_preparer.quote
    union = " UNION ".join(f"SELECT DISTINCT course_id FROM {quote(t.name)}" for t in tables)
    return sorted(c for c in connection.exec_driver_sql(union).scalars() if c)


class _Import:
    def __init__(self, connection: sa.Connection, existing: _Existing, report: ImportReport, levels: RiskLevels, now: datetime):
        self.connection, self.existing, self.report, self.levels, self.now = connection, existing, report, levels, now
        self.dry_run = report.dry_run
        self.latest_allowed = now + timedelta(days=1)
        self.checks = Checks()
        self.pending: dict[str, list[dict]] = defaultdict(list)
        self.pending_digests: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.flips: list[int] = []
        self.enrolled: set[tuple[str, int]] | None = None
        self.legacy_scores: dict[tuple[str, int], tuple[float, float | None]] = {}
        self.outcomes: dict[tuple[str, int], tuple[bool, bool]] = {}
        self.constants = {t.name: t.constants(now) for t in (PREDICTIONS, TRAINING, FEATURES, *SIDE_TARGETS.values())}

    # --- bookkeeping ------------------------------------------------------------------
    def quarantine(self, table: V1Table, raw: dict, part: str, reason: str, detail: str) -> None:
        course = raw.get("course_id") or None
        entry = Quarantined(table.name, int(raw["id"]), part, reason, detail, course, raw.get("user_id"), source_values(table, raw))
        self.report.quarantine.append(entry)
        if (entry.source_table, entry.source_id, entry.part) not in self.existing.quarantined:
            self.report.quarantine_new += 1
            self.pending["legacy_quarantine"].append({
                "source_table": entry.source_table, "source_id": entry.source_id, "part": part, "reason": reason,
                "detail": detail[:1000], "course_id": course, "user_id": entry.user_id, "source_values": entry.source_values,
                "quarantined_at": self.now,
            })

    def note_repairs(self, table: V1Table, raw: dict, cleaned: Cleaned) -> None:
        for column, kind in cleaned.repairs:
            self.report.repairs[(table.name, column, kind)] += 1
        for column in cleaned.suspect:
            self.report.suspect.append((table.name, int(raw["id"]), column, cleaned.values[column]))

    def add(self, target: Target, course_id: str, raw: dict, cleaned: Cleaned, extra: dict | None = None,
            source_digest: int | None = None) -> bool:
        """The target row of a clean source row; False when a required value is missing.
        `source_digest`: the source row's, which is the expected one when nothing was repaired."""
        values = target.values(cleaned.values)
        check = self.checks.of(course_id, target.name)
        if missing_at := [i for i in target.required_positions if values[i] is None]:
            missing = sorted({target.columns[i].source for i in missing_at})
            self.quarantine(RAW_DATA if target.source == "raw_data" else _v1(target.source), raw, target.part, MISSING_VALUE,
                            f"{', '.join(missing)} missing (NULL, or a zero or impossible date), which {target.table.name} requires")
            check.quarantined += 1
            return False
        digest = source_digest if source_digest is not None and not cleaned.repairs else target.digest(values)
        check.expected.add(digest)
        if cleaned.repairs:
            check.repaired_values += sum(1 for column, _ in cleaned.repairs if column in target.source_columns)
        key = (course_id, *(values[i] for i in target.key_positions))
        if key in self.existing.keys[target.name]:
            check.kept_existing += 1
            self.report.already_there[target.table.name] += 1
            return True
        self.existing.keys[target.name].add(key)
        row = dict(zip(target.names, values))
        row["course_id"] = course_id
        row.update(self.constants[target.name])
        if extra:
            row.update(extra)
        self.pending[target.name].append(row)
        if self.dry_run:
            self.pending_digests[(course_id, target.name)].append(digest)
        self.report.written[target.table.name] += 1
        return True

    # --- a course's rows of one V1 table ------------------------------------------------
    def course_rows(self, table: V1Table, course_id: str | None, rows: list[dict]) -> None:
        if not course_id:
            for raw in rows:
                self.quarantine(table, raw, "row", NO_COURSE, "course_id is empty" if course_id == "" else "course_id is NULL")
            return
        faults: dict[int, tuple[str, str]] = {}
        for _key, group in groupby(rows, key=lambda r: tuple(r[k] for k in table.key)):
            faults.update(find_duplicates(table, list(group)))
        if table is RAW_DATA:
            self.raw_data_course(course_id, rows, faults)
            return
        target = SIDE_TARGETS[table.name]
        check = self.checks.of(course_id, target.name)
        for raw in rows:
            source_digest = target.digest(target.values(raw))
            check.source.add(source_digest)
            cleaned = clean_row(table, raw, self.latest_allowed)
            fault = faults.get(raw["id"]) or cleaned.fault
            if fault:
                self.quarantine(table, raw, "row", *fault)
                check.quarantined += 1
                continue
            self.note_repairs(table, raw, cleaned)
            self.add(target, course_id, raw, cleaned, source_digest=source_digest)
            if table.name == "enrollments":
                self.enrolled.add((course_id, raw["user_id"]))

    def raw_data_course(self, course_id: str, rows: list[dict], faults: dict[int, tuple[str, str]]) -> None:
        finished = any(r["mooc_is_passed"] is not None and r["is_dropout"] is not None for r in rows)
        self.report.courses += 1
        self.report.finished_courses += finished
        scores = [float(r["fail_risk_score"]) for r in rows if r["fail_risk_score"] is not None and 0 <= r["fail_risk_score"] <= 100]
        levels = iter(self.levels.of(np.array(scores, dtype=float)))
        for raw in rows:
            has_prediction, labelled = raw["fail_risk_score"] is not None, raw["mooc_is_passed"] is not None and raw["is_dropout"] is not None
            targets = ([PREDICTIONS] if has_prediction else []) + ([TRAINING] if finished and labelled else []) + ([] if finished else [FEATURES])
            level = next(levels) if has_prediction and 0 <= raw["fail_risk_score"] <= 100 else None
            digests = {}
            for target in targets:
                digests[target.name] = target.digest(target.values(raw))
                self.checks.of(course_id, target.name).source.add(digests[target.name])
            if finished and not labelled:
                self.report.unlabelled_in_finished += 1
            cleaned = clean_row(RAW_DATA, raw, self.latest_allowed)
            fault = faults.get(raw["id"]) or cleaned.fault
            if fault:
                self.quarantine(RAW_DATA, raw, "row", *fault)
                for target in targets:
                    self.checks.of(course_id, target.name).quarantined += 1
                continue
            self.note_repairs(RAW_DATA, raw, cleaned)
            values, user_id = cleaned.values, raw["user_id"]
            if self.enrolled is not None and (course_id, user_id) not in self.enrolled:
                self.report.learners_without_enrolment += 1
            if has_prediction:
                self.prediction(course_id, raw, cleaned, str(level), digests[PREDICTIONS.name])
            if finished and labelled:
                snapshot = values["updated_at"]
                extra = {"semester": semester_of(course_id, snapshot.date()) if snapshot else None}
                if self.add(TRAINING, course_id, raw, cleaned, extra, digests[TRAINING.name]):
                    self.outcomes[(course_id, user_id)] = (bool(values["mooc_is_passed"]), bool(values["is_dropout"]))
            if not finished:
                self.add(FEATURES, course_id, raw, cleaned, source_digest=digests[FEATURES.name])

    def prediction(self, course_id: str, raw: dict, cleaned: Cleaned, level: str, source_digest: int) -> None:
        values = cleaned.values
        key, at = (course_id, raw["user_id"]), values["predicted_at"]
        newer = self.existing.latest.get(key)
        is_latest = at is not None and (newer is None or newer[1] < at)
        before = len(self.pending[PREDICTIONS.name])
        if not self.add(PREDICTIONS, course_id, raw, cleaned, {"risk_level": level, "is_latest": is_latest}, source_digest):
            return
        if raw["risk_level"] is not None and raw["risk_level"] != level:
            self.report.risk_levels_changed += 1
        self.legacy_scores[key] = (values["fail_risk_score"], values["dropout_risk_score"])
        if len(self.pending[PREDICTIONS.name]) == before:
            return  # imported before: nothing changes
        if is_latest:
            self.report.predictions_latest += 1
            if newer is not None:
                self.flips.append(newer[0])
            self.existing.latest[key] = (-1, at)
        else:
            self.report.predictions_behind_newer += 1

    # --- writing ---------------------------------------------------------------------
    def flush(self, dry_run: bool, force: bool = False) -> None:
        if dry_run:
            return
        if self.flips:
            p = schema.predictions
            for chunk in _chunks(self.flips):
                self.connection.execute(p.update().where(p.c.id.in_(chunk)).values(is_latest=False))
            self.flips.clear()
        for name, rows in list(self.pending.items()):
            if rows and (force or len(rows) >= FLUSH_ROWS):
                table = schema.legacy_quarantine if name == "legacy_quarantine" else _table_of(name)
                bulk_insert(self.connection, table, rows)
                self.pending[name] = []


def _v1(name: str) -> V1Table:
    from dropout_pipeline.legacy.contract import V1_TABLES

    return V1_TABLES[name]


def _table_of(target_name: str) -> sa.Table:
    return {PREDICTIONS.name: PREDICTIONS.table, TRAINING.name: TRAINING.table, FEATURES.name: FEATURES.table,
            **{n: t.table for n, t in SIDE_TARGETS.items()}}[target_name]


def import_v1(source_url: str, target: sa.Engine, dry_run: bool = False, levels: RiskLevels | None = None,
              now: datetime | None = None) -> ImportReport:
    """Import a V1 database into the product's; the report says what happened. Raises
    LegacySourceError before any write when the source is unreachable or not V1, and
    UnexplainedDifferences (after rolling back) when the verification finds one."""
    started = time.monotonic()
    now = now or utc_now().replace(microsecond=0)  # V1's DATETIME holds whole seconds
    report = ImportReport(shown(source_url), shown(target.url), dry_run)
    with _cyclic_gc_paused(), open_source(source_url) as source:
        shape = check_source(source)
        report.tables_absent = shape.absent
        course_ids = _course_ids(source, shape.tables)
        targets = [PREDICTIONS, TRAINING, FEATURES] + [SIDE_TARGETS[t.name] for t in shape.tables if t is not RAW_DATA]
        with target.connect() as connection:
            existing = _Existing(connection, course_ids, targets)
            work = _Import(connection, existing, report, levels or RiskLevels(), now)
            if any(t.name == "enrollments" for t in shape.tables):
                work.enrolled, report.learners_without_enrolment = set(), 0
            ordered = sorted(shape.tables, key=lambda t: (t is RAW_DATA, t.name != "enrollments"))
            for table in ordered:
                read = 0
                for course_id, rows in groupby(stream_rows(source, table), key=lambda r: r["course_id"]):
                    rows = list(rows)
                    read += len(rows)
                    work.course_rows(table, course_id, rows)
                    work.flush(dry_run)
                report.tables_read[table.name] = read
            work.flush(dry_run, force=True)
            _end_phase(report, "read, repair and write", started)
            _verify(work, connection, targets, course_ids, dry_run)
            _end_phase(report, "verification", started)
            report.comparisons = compare_with_ours(connection, work.legacy_scores, work.outcomes)
            _end_phase(report, "legacy model vs ours", started)
            if dry_run:
                connection.rollback()
                return report
            if report.unexplained:
                connection.rollback()
                raise UnexplainedDifferences(report)
            connection.commit()
            _end_phase(report, "commit", started)
            report.committed = True
    return report


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector off for the import. The import keeps millions of small,
    acyclic objects alive (the keys already in the target, the scores for the comparison),
    and each full collection walks all of them: 12 s of a million rows' 97. Reference
    counting still frees everything that is not a cycle; the few cycles the drivers make
    are collected when it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _end_phase(report: ImportReport, phase: str, started: float) -> None:
    """The phase just ended takes the time since the previous one; the total so far is updated."""
    report.seconds = time.monotonic() - started
    report.phases[phase] = report.seconds - sum(report.phases.values())


def _verify(work: _Import, connection: sa.Connection, targets: list[Target], course_ids: list[str], dry_run: bool) -> None:
    for target in targets:
        for course_id, sums in read_back(connection, target, course_ids).items():
            work.checks.of(course_id, target.name).actual = sums
        if dry_run:  # what the target would hold: its rows and those the import would add
            for (course_id, name), digests in work.pending_digests.items():
                if name == target.name:
                    actual = work.checks.of(course_id, name).actual
                    for digest in digests:
                        actual.add(digest)
    work.report.checks = work.checks.sorted()

