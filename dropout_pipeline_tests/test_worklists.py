"""Worklists hold exactly their share of a course (issue 22): one size rule, in exact
arithmetic, for the teacher's list (predictions.queries, the web app) and the evaluation,
which draws one list per course and snapshot date as a teacher gets them."""

from datetime import date, datetime, timedelta
from fractions import Fraction

import numpy as np
import pandas as pd

from dropout_pipeline.modeling.metrics import WORKLIST_SHARE, evaluation_rows, worklist_metrics, worklist_size
from dropout_pipeline.predictions.queries import worklist
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.web.risk_list import students_page

COURSE = "course-v1:Lists+L1+2026_S1"


def test_seven_percent_of_100_learners_is_a_worklist_of_7_not_8():
    # on doubles 0.07 * 100 is 7.000000000000001 and 0.07 * 200 is 14.000000000000002: ceil gave 8 and 15
    assert worklist_size(100, 0.07) == 7 and worklist_size(200, 0.07) == 14
    assert worklist_size(30) == 3 and WORKLIST_SHARE == 0.10
    assert worklist_size(0, 0.07) == 0 and worklist_size(3, 0.07) == 1 and worklist_size(101, 0.07) == 8 and worklist_size(5, 1.0) == 5


def test_every_whole_percent_of_every_course_size_gives_the_exact_ceiling():
    for percent in range(1, 101):
        share = percent / 100
        for learners in range(1, 501):
            exact = -(-percent * learners // 100)  # ceil(percent * learners / 100) in integers
            assert worklist_size(learners, share) == max(1, exact), (percent, learners)
    assert worklist_size(8, Fraction(1, 8)) == 1 and worklist_size(9, 0.125) == 2


def store_course(url: str, learners: int, share: float | None) -> None:
    """`learners` enrolled and predicted learners, learner u scored u / 1000 (the riskiest last)."""
    engine = engine_for(url)
    at = datetime(2026, 11, 20)
    with engine.begin() as connection:
        connection.execute(schema.courses.insert(), [{"course_id": COURSE, "display_name": "L", "org": "Lists", "start": datetime(2026, 9, 1), "discovered_at": at}])
        connection.execute(schema.enrollments.insert(), [
            {"user_id": u, "course_id": COURSE, "enrollment_id": u, "is_active": True, "fetched_at": at} for u in range(1, learners + 1)
        ])
        connection.execute(schema.course_model_mapping.insert(), [
            {"course_id": COURSE, "model_name": "m", "auto_predict": True, "predict_frequency": "daily", "worklist_share": share, "updated_at": at}
        ])
        connection.execute(schema.predictions.insert(), [
            {"user_id": u, "course_id": COURSE, "model_name": "m", "model_version": 1, "fail_risk_score": u / 10, "risk_level": "LOW",
             "snapshot_date": at.date(), "reasons": [], "predicted_at": at, "is_latest": True}
            for u in range(1, learners + 1)
        ])


def test_the_teachers_worklist_of_a_course_sharing_7_percent_of_100_learners_holds_7_on_every_engine(any_database_url):
    store_course(any_database_url, 100, 0.07)
    engine = engine_for(any_database_url)
    with engine.connect() as connection:
        listed = worklist(connection, COURSE)
        page = students_page(connection, COURSE, [], "risk", True, 1, 200)
    assert listed["user_id"].tolist() == list(range(100, 93, -1))
    assert page["worklist"] == {"share": 0.07, "length": 7}
    assert sorted(s["user_id"] for s in page["students"] if s["on_worklist"]) == list(range(94, 101))


def weekly_holdout() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One course, one week, ten learners on each of days 1, 4 and 7; on each day the riskiest
    learner is the one who fails. Scores rise through the week: day 7's ten learners all
    score above days 1 and 4's."""
    start = date(2026, 9, 1)
    frames, y, p = [], [], []
    for day, base in ((1, 0.0), (4, 0.1), (7, 0.5)):
        frames.append(pd.DataFrame({"course_id": "c", "snapshot_week": 1, "snapshot_date": start + timedelta(days=day - 1), "user_id": range(10)}))
        y += [1] + [0] * 9
        p += [base + 0.4] + [base + 0.3 - i / 100 for i in range(9)]
    return pd.concat(frames, ignore_index=True), np.array(y), np.array(p)


def test_the_evaluation_draws_one_worklist_per_course_and_snapshot_date_not_one_per_week():
    holdout, y, p = weekly_holdout()
    rows = evaluation_rows(holdout, pd.Series(y), p, 0.5)
    # One list per day flags its riskiest learner (10% of 10): three failing learners of three.
    # Pooled into one list of 30, the riskiest three are all from day 7, of whom one fails.
    for row in rows:
        assert row["worklist_precision"] == 1.0 and row["worklist_recall"] == 1.0, row
    assert [(r["course_id"], r["snapshot_week"]) for r in rows] == [("all", None), ("all", 1), ("c", None)]


def test_worklist_metrics_flag_the_riskiest_of_each_list_ties_in_row_order():
    rng = np.random.default_rng(22)
    for _ in range(50):
        n = int(rng.integers(0, 200))
        lists, p = rng.integers(0, 12, n), rng.integers(0, 5, n) / 4  # many ties
        y = rng.integers(0, 2, n)
        flagged = np.zeros(n, dtype=bool)
        for key in np.unique(lists):  # the rule, list by list
            members = np.flatnonzero(lists == key)
            flagged[members[np.argsort(-p[members], kind="stable")[: worklist_size(len(members), 0.07)]]] = True
        expected_precision = float(y[flagged].mean()) if flagged.any() else None
        expected_recall = float(y[flagged].sum() / y.sum()) if y.sum() else None
        got = worklist_metrics(y, p, lists, 0.07)
        assert (got["worklist_precision"], got["worklist_recall"]) == (expected_precision, expected_recall)
