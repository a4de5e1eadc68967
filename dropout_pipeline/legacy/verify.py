"""Verification: per course and table, counts and content checksums, source against target.

Three sums per course and target table (transform.Sum: a count and an order-free checksum
of the compared columns):
- source: the V1 rows as read, every row that maps to this target;
- expected: the same rows after their documented repairs, without the quarantined ones;
- target: the rows the product's table holds for the course, read back from it (the
  imported rows: model `legacy-v1`, snapshot_kind 'end_of_course', a legacy course's rows).
The target must equal the expected exactly; the source differs from it only by the repairs
and the quarantine, which the check counts. Anything else is an unexplained difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from dropout_pipeline.legacy.transform import Sum, Target

IN_CHUNK = 500


@dataclass
class CourseCheck:
    course_id: str
    target: str
    source: Sum = field(default_factory=Sum)
    expected: Sum = field(default_factory=Sum)
    actual: Sum = field(default_factory=Sum)
    quarantined: int = 0
    repaired_values: int = 0
    kept_existing: int = 0  # target rows already there with the same key: never overwritten

    @property
    def status(self) -> str:
        if self.actual != self.expected:
            # Rows the target held before (a live pull, an earlier import) are kept as they
            # are: their content may differ, their number may not.
            kept = self.kept_existing and self.actual.count == self.expected.count
            return "explained" if kept else "unexplained"
        return "identical" if self.source == self.expected else "explained"

    def explanation(self) -> str:
        parts = []
        if self.quarantined:
            parts.append(f"{self.quarantined} quarantined")
        if self.repaired_values:
            parts.append(f"{self.repaired_values} values repaired")
        if self.actual != self.expected and self.status == "explained":
            parts.append(f"{self.kept_existing} rows were in the target before the import and are kept as they are "
                         f"(never overwritten); the target's content differs from the source there")
        if self.status == "unexplained":
            parts.append(
                f"target holds {self.actual.count} rows (checksum {self.actual.hex}) where {self.expected.count} "
                f"(checksum {self.expected.hex}) were expected"
                + (f"; {self.kept_existing} rows were already there and kept" if self.kept_existing else "")
            )
        return ", ".join(parts) or "identical"

    def as_dict(self) -> dict:
        return {
            "course_id": self.course_id, "table": self.target, "status": self.status,
            "source_rows": self.source.count, "target_rows": self.actual.count, "expected_rows": self.expected.count,
            "source_checksum": self.source.hex, "target_checksum": self.actual.hex, "expected_checksum": self.expected.hex,
            "quarantined": self.quarantined, "repaired_values": self.repaired_values, "reason": self.explanation(),
        }


class Checks:
    """The checks of one import, keyed by (course, target)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], CourseCheck] = {}

    def of(self, course_id: str, target: str) -> CourseCheck:
        check = self.by_key.get((course_id, target))
        if check is None:
            check = self.by_key[(course_id, target)] = CourseCheck(course_id, target)
        return check

    def sorted(self) -> list[CourseCheck]:
        return [self.by_key[k] for k in sorted(self.by_key)]


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def read_back(connection: sa.Connection, target: Target, course_ids: list[str]) -> dict[str, Sum]:
    """The target table's imported rows of the given courses, summed per course."""
    table = target.table
    sums: dict[str, Sum] = defaultdict(Sum)
    if not course_ids or not sa.inspect(connection).has_table(table.name):
        return sums
    columns = [table.c[c.target] for c in target.columns]
    for chunk in _chunks(course_ids):
        query = sa.select(table.c.course_id, *columns).where(table.c.course_id.in_(chunk))
        if target.marker is not None:
            query = query.where(target.marker(table))
        result = connection.execution_options(yield_per=50_000).execute(query)
        for row in result:
            sums[row[0]].add(target.digest(row[1:]))
    return sums
