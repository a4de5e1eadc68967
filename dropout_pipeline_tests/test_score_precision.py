"""Scores keep their precision through the database on every engine (issue 22).

MariaDB's FLOAT is 4 bytes (about 7 significant digits): 69.999998 came back as 70.0 beside
its MEDIUM level, and learners 1e-6 apart at the top of a list tied again. Scores are
written through the predictions' own write path (score_learners, append_predictions) and
read through the worklist a teacher sees.
"""

from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dropout_pipeline.modeling.scorers import Scorer
from dropout_pipeline.predictions.queries import worklist, worklist_share
from dropout_pipeline.predictions.score import RiskLevels, score_learners
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.analytics_tables import read_anomaly_threshold, store_anomaly_threshold
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.prediction_tables import append_predictions

COURSE = "course-v1:Precise+P1+2026_S1"


class FixedScorer(Scorer):
    """A model whose calibrated probabilities are given per learner, with no reasons."""

    def __init__(self, probabilities: list[float]):
        self.features, self.calibration, self.model_type, self.suffix = [], None, "fixed", ".json"
        self.probabilities = np.array(probabilities)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.probabilities[: len(frame)]

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros((len(frame), 0))


def learners(user_ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": user_ids, "course_id": COURSE, "snapshot_date": date(2026, 11, 20),
        "mooc_grade_percentage": 0.5, "mooc_completion_rate": 0.5,
    })


def store_and_read_worklist(url: str, fail_probabilities: list[float], dropout_probabilities: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score learners 1, 2, ... with the given probabilities, append them, and read back the
    stored rows and the worklist (the riskiest first, ties by learner)."""
    engine = engine_for(url)
    user_ids = list(range(1, len(fail_probabilities) + 1))
    scored = score_learners(learners(user_ids), FixedScorer(fail_probabilities), FixedScorer(dropout_probabilities), RiskLevels())
    fetched = datetime(2026, 11, 20)
    with engine.begin() as connection:
        connection.execute(schema.courses.insert(), [{"course_id": COURSE, "display_name": "P", "org": "Precise", "start": datetime(2026, 9, 1), "discovered_at": fetched}])
        connection.execute(schema.enrollments.insert(), [
            {"user_id": u, "course_id": COURSE, "enrollment_id": u, "is_active": True, "fetched_at": fetched} for u in user_ids
        ])
        connection.execute(schema.course_model_mapping.insert(), [
            {"course_id": COURSE, "model_name": "m", "auto_predict": True, "predict_frequency": "daily", "worklist_share": 1.0, "updated_at": fetched}
        ])
        append_predictions(connection, COURSE, scored, {"model_name": "m", "model_version": 1}, fetched)
    with engine.connect() as connection:
        stored = pd.read_sql(
            sa.select(schema.predictions.c.user_id, schema.predictions.c.fail_risk_score, schema.predictions.c.dropout_risk_score,
                      schema.predictions.c.risk_level).order_by(schema.predictions.c.user_id),
            connection,
        )
        listed = worklist(connection, COURSE)
    return stored, listed


def test_a_score_just_below_70_stays_below_70_and_medium_on_every_engine(any_database_url):
    stored, listed = store_and_read_worklist(any_database_url, [0.69999998, 0.70], [0.5, 0.5])
    below, at = stored.iloc[0], stored.iloc[1]
    assert below["fail_risk_score"] == 69.999998 and below["fail_risk_score"] < RiskLevels().high_from
    assert below["risk_level"] == "MEDIUM" and RiskLevels().of(np.array([below["fail_risk_score"]]))[0] == "MEDIUM"
    assert at["fail_risk_score"] == 70.0 and at["risk_level"] == "HIGH"
    assert listed["user_id"].tolist() == [2, 1]


def test_scores_one_millionth_apart_stay_apart_and_in_order_on_every_engine(any_database_url):
    # learner 2 is riskier by 1e-6 on both scores; MariaDB's 4-byte FLOAT tied them at 99.999 and the tie went to learner 1
    stored, listed = store_and_read_worklist(any_database_url, [0.99999001, 0.99999002], [0.98765401, 0.98765402])
    assert stored["fail_risk_score"].tolist() == [99.999001, 99.999002]
    assert stored["dropout_risk_score"].tolist() == [98.765401, 98.765402]
    assert listed["user_id"].tolist() == [2, 1]


def test_a_stored_anomaly_threshold_and_worklist_share_read_back_exactly_on_every_engine(any_database_url):
    """The threshold is one of the scores it was chosen on (score >= threshold flags it) and is
    read back by every later run; a share of 0.07 read back as 0.0700000003 lengthened lists."""
    engine = engine_for(any_database_url)
    chosen = 0.6123456789012345
    with engine.begin() as connection:
        store_anomaly_threshold(connection, {
            "training_rows": 10, "threshold": chosen, "reliability": 0.5, "f1": 0.4, "precision": 0.3, "recall": 0.7,
            "flagged_share": 0.07, "courses": ["c"], "rows": 10, "note": "chosen", "chosen_at": datetime(2026, 11, 20),
        })
        connection.execute(schema.course_model_mapping.insert(), [
            {"course_id": COURSE, "model_name": "m", "auto_predict": True, "predict_frequency": "daily", "worklist_share": 0.07, "updated_at": datetime(2026, 11, 20)}
        ])
    with engine.connect() as connection:
        stored = read_anomaly_threshold(connection, 10)
        share = worklist_share(connection, COURSE)
    assert stored["threshold"] == chosen and chosen >= stored["threshold"]
    assert stored["flagged_share"] == 0.07 and share == 0.07


def test_the_migrated_score_columns_are_of_the_metadata_type_on_every_engine(any_database_url):
    """What migrations build is what schema.py declares for the scores (a column the
    metadata says is double precision is not a 4-byte FLOAT in the database)."""
    engine = engine_for(any_database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        type_changes = [
            (change[0][2], change[0][3], str(change[0][5]), str(change[0][6]))
            for change in compare_metadata(context, schema.metadata)
            if isinstance(change, list) and change[0][0] == "modify_type"
            and isinstance(schema.metadata.tables[change[0][2]].c[change[0][3]].type, sa.Double)  # what this test is about
        ]
    assert type_changes == []
    doubles = [(t.name, c.name) for t in schema.metadata.tables.values() for c in t.columns if isinstance(c.type, sa.Double)]
    assert ("predictions", "fail_risk_score") in doubles and ("predictions", "dropout_risk_score") in doubles
    inspected = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("predictions")}
    if engine.dialect.name != "sqlite":  # SQLite stores every REAL as an 8-byte double whatever the declared name
        assert all(isinstance(inspected[name], sa.Double) for name in ("fail_risk_score", "dropout_risk_score")), inspected
