"""The import's report: printed by the CLI, attached to the Dagster materialization.

It counts what was read, written and left as it was, every repair by table, column and
kind, every quarantined row by reason (each listed), the verification per course and table
(every difference with its reason, or none), and the legacy model beside ours. A dry run
prints the same report, said to be one, with what would be written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from dropout_pipeline.legacy.compare import Comparison
from dropout_pipeline.legacy.transform import NOT_CARRIED, Quarantined
from dropout_pipeline.legacy.verify import CourseCheck

LISTED = 50  # quarantined rows and suspect values printed in full; all are in the table / metadata


@dataclass
class ImportReport:
    source: str  # password hidden
    target: str  # password hidden
    dry_run: bool
    tables_read: dict[str, int] = field(default_factory=dict)
    tables_absent: tuple[str, ...] = ()
    courses: int = 0
    finished_courses: int = 0
    written: Counter = field(default_factory=Counter)  # target table -> rows inserted (or that would be)
    already_there: Counter = field(default_factory=Counter)  # target table -> rows whose key was present: kept
    repairs: Counter = field(default_factory=Counter)  # (table, column, kind) -> values
    suspect: list[tuple[str, int, str, str]] = field(default_factory=list)  # (table, id, column, value kept)
    quarantine: list[Quarantined] = field(default_factory=list)
    quarantine_new: int = 0
    learners_without_enrolment: int | None = None
    unlabelled_in_finished: int = 0
    predictions_latest: int = 0
    predictions_behind_newer: int = 0
    risk_levels_changed: int = 0
    checks: list[CourseCheck] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds, in order: where the time went
    committed: bool = False

    @property
    def differences(self) -> list[CourseCheck]:
        return [c for c in self.checks if c.status != "identical"]

    @property
    def unexplained(self) -> list[CourseCheck]:
        return [c for c in self.checks if c.status == "unexplained"]

    def quarantine_counts(self) -> Counter:
        return Counter((q.source_table, q.reason) for q in self.quarantine)

    def render(self) -> str:
        mode = "DRY RUN: nothing written; counts are what the import would write" if self.dry_run else (
            "committed" if self.committed else "ROLLED BACK: nothing written")
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())
        lines = [f"Legacy V1 import from {self.source} into {self.target} ({mode}), {self.seconds:.1f} s" + (f" ({phases})" if phases else "")]
        lines.append("Read: " + ", ".join(f"{t} {n:,}" for t, n in self.tables_read.items())
                     + (f"; absent (nothing to import): {', '.join(self.tables_absent)}" if self.tables_absent else ""))
        lines.append(f"Courses: {self.courses:,} ({self.finished_courses:,} finished: labelled rows; the others running)")
        verb = "the import would write" if self.dry_run else "written"
        lines.append(f"Rows {verb}: " + (", ".join(f"{t} {n:,}" for t, n in sorted(self.written.items())) or "none"))
        if self.already_there:
            lines.append("Already in the target, kept as they are: " + ", ".join(f"{t} {n:,}" for t, n in sorted(self.already_there.items())))
        lines.append(f"Predictions of legacy-v1: {self.predictions_latest:,} the latest, {self.predictions_behind_newer:,} behind a newer one; "
                     f"risk level derived by today's thresholds differs from V1's on {self.risk_levels_changed:,}")
        if self.unlabelled_in_finished:
            lines.append(f"Rows of finished courses without labels (no training row): {self.unlabelled_in_finished:,}")
        if self.learners_without_enrolment is not None:
            lines.append(f"Learners in raw_data without an enrolment (imported; no name or enrolment date): {self.learners_without_enrolment:,}")
        total = sum(self.repairs.values())
        lines.append(f"Repairs: {total:,} values" + ("" if total else " (none needed)"))
        for (table, column, kind), n in sorted(self.repairs.items()):
            lines.append(f"  {table}.{column}: {n:,} {kind.replace('_', ' ')}")
        if self.suspect:
            lines.append(f"Text still mis-decoded after repair (bytes lost before the import; kept as it is): {len(self.suspect):,}")
            for table, source_id, column, value in self.suspect[:LISTED]:
                lines.append(f"  {table} id {source_id} {column}: {value!r}")
        lines.append(f"Quarantined (not imported, in legacy_quarantine): {len(self.quarantine):,}"
                     + ("" if self.dry_run else f" ({self.quarantine_new:,} new)"))
        for (table, reason), n in sorted(self.quarantine_counts().items()):
            lines.append(f"  {table}: {n:,} {reason.replace('_', ' ')}")
        for q in self.quarantine[:LISTED]:
            lines.append(f"    {q.source_table} id {q.source_id} ({q.part}): {q.reason}: {q.detail}")
        if len(self.quarantine) > LISTED:
            lines.append(f"    ... {len(self.quarantine) - LISTED:,} more in legacy_quarantine")
        lines.append("Columns not carried over: " + "; ".join(f"{k} ({v})" for k, v in NOT_CARRIED.items()))
        identical = sum(1 for c in self.checks if c.status == "identical")
        lines.append(f"Verification, per course and table ({len(self.checks):,}): {identical:,} identical, "
                     f"{len(self.differences) - len(self.unexplained):,} differ with their reasons, {len(self.unexplained):,} unexplained")
        for check in self.differences:
            lines.append(f"  {check.status.upper():<11} {check.course_id} {check.target}: source {check.source.count:,} rows "
                         f"({check.source.hex}), target {check.actual.count:,} ({check.actual.hex}): {check.explanation()}")
        for comparison in self.comparisons:
            if comparison.legacy_auc is None:
                lines.append(f"Legacy model vs ours, {comparison.target} risk: not compared ({comparison.note}; {comparison.learners} learners)")
            else:
                lines.append(f"Legacy model vs ours, {comparison.target} risk, on the same {comparison.learners:,} learners of "
                             f"{comparison.courses} courses: ROC AUC legacy-v1 {comparison.legacy_auc:.3f}, ours {comparison.our_auc:.3f}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "source": self.source, "target": self.target, "dry_run": self.dry_run, "committed": self.committed,
            "tables_read": self.tables_read, "tables_absent": list(self.tables_absent), "courses": self.courses,
            "written": dict(self.written), "already_there": dict(self.already_there),
            "repairs": {f"{t}.{c}:{k}": n for (t, c, k), n in sorted(self.repairs.items())},
            "suspect_text": len(self.suspect), "quarantined": {f"{t}:{r}": n for (t, r), n in sorted(self.quarantine_counts().items())},
            "learners_without_enrolment": self.learners_without_enrolment,
            "differences": [c.as_dict() for c in self.differences],
            "checks": len(self.checks), "unexplained": len(self.unexplained),
            "comparisons": [c.as_dict() for c in self.comparisons], "seconds": round(self.seconds, 1),
            "phases": {name: round(seconds, 1) for name, seconds in self.phases.items()},
        }
