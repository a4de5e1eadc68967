"""Scores, probabilities and the shares and thresholds they are compared with, in double
precision on every engine (issue 22).

`sa.Float()` without a precision is a 4-byte FLOAT on MariaDB (about 7 significant digits):
a fail-risk score of 69.999998 came back as 70.0 beside its MEDIUM level, learners 1e-6
apart at the top of a list tied again, a worklist share of 0.07 came back as 0.0700000003,
and an anomaly threshold read back flagged differently from the one chosen.

- MariaDB / MySQL: the columns below become DOUBLE (ALTER TABLE ... MODIFY keeps their
  nullability, indexes and the raw_data view, which MariaDB resolves when it is read).
- PostgreSQL: nothing to do. `FLOAT` without a precision has always been `double precision`
  there; an ALTER would also be refused on predictions' score columns, which the raw_data
  view (0008) selects.
- SQLite: nothing to do. Every REAL value is an 8-byte IEEE double whatever the declared
  type; a batch rebuild would drop training_data's triggers and trip over the raw_data view
  for no change in what is stored.

Left as FLOAT (as the sources give them, neither ranked nor compared with a stored
threshold): the raw API tables, the 55 features (student_features, its history and daily
snapshots, training_data; models read them as stored on both sides) and the predictions'
snapshot_grade and snapshot_completion_rate (copies of two features, for display).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# (table, column, nullable): every column schema.py declares as sa.Double since 0010
DOUBLE_COLUMNS = (
    ('predictions', 'fail_risk_score', False),
    ('predictions', 'dropout_risk_score', True),
    ('course_model_mapping', 'worklist_share', True),
    ('model_performance', 'roc_auc', True),
    ('model_performance', 'pr_auc', True),
    ('model_performance', 'accuracy', True),
    ('model_performance', 'precision_score', True),
    ('model_performance', 'recall_score', True),
    ('model_performance', 'f1_score', True),
    ('model_performance', 'brier_score', True),
    ('model_performance', 'calibration_error', True),
    ('model_performance', 'threshold', True),
    ('model_performance', 'worklist_share', True),
    ('model_performance', 'worklist_precision', True),
    ('model_performance', 'worklist_recall', True),
    ('engagement_anomalies', 'score', True),
    ('engagement_anomalies', 'threshold', True),
    ('engagement_anomalies', 'reliability', False),
    ('anomaly_thresholds', 'threshold', True),
    ('anomaly_thresholds', 'reliability', False),
    ('anomaly_thresholds', 'f1', True),
    ('anomaly_thresholds', 'precision', True),
    ('anomaly_thresholds', 'recall', True),
    ('anomaly_thresholds', 'flagged_share', True),
    ('evidence_fusion', 'belief', False),
    ('evidence_fusion', 'plausibility', False),
    ('evidence_fusion', 'uncertainty', False),
    ('evidence_fusion', 'conflict', False),
)


def _retype(sql_type: str) -> None:
    """Every column of DOUBLE_COLUMNS to `sql_type` on MariaDB, one ALTER TABLE per table:
    the type change copies the table, so predictions' history is copied once, not per column."""
    bind = op.get_bind()
    if bind.dialect.name not in ('mysql', 'mariadb'):
        return  # already 8-byte doubles (see above)
    quote = bind.dialect.identifier_preparer.quote  # `precision` is a reserved word there
    tables = {}
    for table, column, nullable in DOUBLE_COLUMNS:
        tables.setdefault(table, []).append(f"MODIFY {quote(column)} {sql_type} {'NULL' if nullable else 'NOT NULL'}")
    for table, modifications in tables.items():
        op.execute(f"ALTER TABLE {quote(table)} {', '.join(modifications)}")


def upgrade() -> None:
    _retype('DOUBLE')


def downgrade() -> None:
    _retype('FLOAT')
