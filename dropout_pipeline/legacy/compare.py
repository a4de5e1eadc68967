"""What we replaced: the legacy model's ROC AUC beside ours, on the same learners and courses.

Where a finished legacy course's final outcomes are known (its labelled V1 rows, or the
product's own training rows), and a learner has both a legacy-v1 prediction and one of ours
(the latest per learner and course of any other model), both scores are judged on exactly
those learners: fail risk against not passing, dropout risk against dropping out.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from dropout_pipeline.legacy.transform import LEGACY_MODEL
from dropout_pipeline.storage import schema

Key = tuple[str, int]


@dataclass(frozen=True)
class Comparison:
    target: str  # fail | dropout
    learners: int
    courses: int
    legacy_auc: float | None
    our_auc: float | None
    note: str

    def as_dict(self) -> dict:
        return {"target": self.target, "learners": self.learners, "courses": self.courses,
                "legacy_v1_roc_auc": self.legacy_auc, "ours_roc_auc": self.our_auc, "note": self.note}


def _ours(connection: sa.Connection, course_ids: list[str]) -> dict[Key, tuple[float, float | None]]:
    p = schema.predictions
    latest: dict[Key, tuple] = {}
    for start in range(0, len(course_ids), 500):
        query = sa.select(p.c.course_id, p.c.user_id, p.c.predicted_at, p.c.fail_risk_score, p.c.dropout_risk_score).where(
            p.c.course_id.in_(course_ids[start : start + 500]), p.c.model_name != LEGACY_MODEL
        )
        for course_id, user_id, at, fail, dropout in connection.execute(query):
            known = latest.get((course_id, user_id))
            if known is None or at > known[0]:
                latest[(course_id, user_id)] = (at, fail, dropout)
    return {k: (v[1], v[2]) for k, v in latest.items()}


def _known_outcomes(connection: sa.Connection, course_ids: list[str]) -> dict[Key, tuple[bool, bool]]:
    t = schema.training_data
    found = {}
    for start in range(0, len(course_ids), 500):
        query = sa.select(t.c.course_id, t.c.user_id, t.c.is_passed, t.c.is_dropout).where(t.c.course_id.in_(course_ids[start : start + 500])).distinct()
        for course_id, user_id, passed, dropout in connection.execute(query):
            found[(course_id, user_id)] = (bool(passed), bool(dropout))
    return found


def compare_with_ours(
    connection: sa.Connection, legacy: dict[Key, tuple[float, float | None]], outcomes: dict[Key, tuple[bool, bool]]
) -> list[Comparison]:
    course_ids = sorted({course for course, _ in legacy})
    if not sa.inspect(connection).has_table(schema.predictions.name):  # a dry run on a database never migrated
        course_ids = []
    ours = _ours(connection, course_ids) if course_ids else {}
    known = {**_known_outcomes(connection, course_ids), **outcomes} if course_ids else dict(outcomes)
    results = []
    for index, target in ((0, "fail"), (1, "dropout")):
        keys = sorted(k for k in legacy if k in ours and k in known and legacy[k][index] is not None and ours[k][index] is not None)
        truth = [(not known[k][0]) if index == 0 else known[k][1] for k in keys]
        courses = len({c for c, _ in keys})
        if not keys:
            note = "no learner has both a legacy-v1 prediction and one of ours with a known outcome"
            results.append(Comparison(target, 0, 0, None, None, note))
        elif len(set(truth)) < 2:
            results.append(Comparison(target, len(keys), courses, None, None, "one outcome only among them: ROC AUC undefined"))
        else:
            legacy_auc = float(roc_auc_score(truth, [legacy[k][index] for k in keys]))
            our_auc = float(roc_auc_score(truth, [ours[k][index] for k in keys]))
            results.append(Comparison(target, len(keys), courses, round(legacy_auc, 4), round(our_auc, 4), "same learners and courses"))
    return results
