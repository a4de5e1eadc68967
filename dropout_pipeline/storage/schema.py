"""Every table of the product, as SQLAlchemy Core metadata.

Migrations under `migrations/versions` are generated from this module with Alembic
autogenerate and are the only way the schema reaches a database. Times are stored as
naive UTC (`DateTime` without time zone) because SQLite and MariaDB cannot keep an
offset; the client converts every API timestamp to UTC before it lands here.

Scores, probabilities, and the shares and thresholds they are compared with are `DOUBLE`
(migration 0010): a bare `sa.Float` is a 4-byte FLOAT on MariaDB, which turned 69.999998
into 70.0 and tied learners 1e-6 apart. Values as the sources give them (raw tables,
features) stay `sa.Float`.
"""

from __future__ import annotations

import sqlalchemy as sa

from dropout_pipeline.features.dictionary import FEATURES

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

COURSE_ID = sa.String(255)
# Scores, probabilities and what they are compared with (migration 0010). SQLite keeps the
# FLOAT its tables were created with: every REAL there is an 8-byte double whatever its name.
DOUBLE = sa.Double().with_variant(sa.Float(), "sqlite")


def _id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True)


def _learner_columns() -> list[sa.Column]:
    return [
        _id(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("course_id", COURSE_ID, nullable=False, index=True),
    ]


def _per_learner_table(name: str, *columns: sa.Column) -> sa.Table:
    """A raw table with one row per learner and course, as the legacy ERD promised."""
    return sa.Table(
        name,
        metadata,
        *_learner_columns(),
        *columns,
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("user_id", "course_id"),
    )


def _per_content_table(name: str, *columns: sa.Column) -> sa.Table:
    """A raw detail table with one row per learner, course and H5P content."""
    return sa.Table(
        name,
        metadata,
        *_learner_columns(),
        sa.Column("content_id", sa.BigInteger, nullable=False),
        *columns,
        sa.Column("fetched_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("user_id", "course_id", "content_id"),
    )


# --- Ingestion -------------------------------------------------------------------------

courses = sa.Table(
    "courses",
    metadata,
    sa.Column("course_id", COURSE_ID, primary_key=True),
    sa.Column("display_name", sa.String(500), nullable=False),
    sa.Column("org", sa.String(255), nullable=False),
    sa.Column("start", sa.DateTime, nullable=False),
    sa.Column("end", sa.DateTime, nullable=True),
    sa.Column("enrollment_count", sa.Integer, nullable=True),
    sa.Column("discovered_at", sa.DateTime, nullable=False),
)

enrollments = _per_learner_table(
    "enrollments",
    sa.Column("enrollment_id", sa.BigInteger, nullable=False),
    sa.Column("username", sa.String(255)),
    sa.Column("email", sa.String(255)),
    sa.Column("full_name", sa.String(255)),
    sa.Column("mode", sa.String(50)),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("created", sa.DateTime, nullable=True),  # NULL: a legacy V1 enrolment whose date was 0000-00-00 (migration 0008)
    sa.Column("attributes", sa.JSON),
)

mooc_grades = _per_learner_table(
    "mooc_grades",
    sa.Column("percent_grade", sa.Float, nullable=False),
    sa.Column("letter_grade", sa.String(50)),
    sa.Column("is_passed", sa.Boolean, nullable=False),
    sa.Column("sections_total", sa.Integer, nullable=True),  # NULL: imported from legacy V1, which never had them (0008)
    sa.Column("sections_attempted", sa.Integer, nullable=True),
    sa.Column("attempted_sections_avg_percent", sa.Float),
    sa.Column("section_breakdown", sa.JSON),
)

mooc_progress = _per_learner_table(
    "mooc_progress",
    sa.Column("total_blocks", sa.Integer, nullable=False),
    sa.Column("completed_blocks", sa.Integer, nullable=False),
    sa.Column("progress_percent", sa.Float, nullable=False),
    sa.Column("current_chapter", sa.String(255)),
    sa.Column("current_section", sa.String(255)),
    sa.Column("current_unit", sa.String(255)),
    sa.Column("completion_rate", sa.Float, nullable=False),
    sa.Column("last_activity", sa.DateTime),
)

mooc_discussions = _per_learner_table(
    "mooc_discussions",
    sa.Column("threads_count", sa.Integer, nullable=False),
    sa.Column("comments_count", sa.Integer, nullable=False),
    sa.Column("total_interactions", sa.Integer, nullable=False),
    sa.Column("questions_count", sa.Integer, nullable=False),
    sa.Column("total_upvotes", sa.Integer, nullable=False),
)

h5p_scores = _per_content_table(
    "h5p_scores",
    sa.Column("content_title", sa.String(500)),
    sa.Column("content_type", sa.String(255)),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("percentage", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=True),  # NULL: imported from legacy V1 (0008)
    sa.Column("finished_at", sa.DateTime),
)

h5p_scores_summary = _per_learner_table(
    "h5p_scores_summary",
    sa.Column("total_contents", sa.Integer, nullable=False),
    sa.Column("completed_contents", sa.Integer, nullable=False),
    sa.Column("total_score", sa.Float, nullable=False),
    sa.Column("total_max_score", sa.Float, nullable=False),
    sa.Column("overall_percentage", sa.Float, nullable=False),
    sa.Column("avg_attempts", sa.Float),
    sa.Column("last_finished_at", sa.DateTime),
)

video_progress = _per_content_table(
    "video_progress",
    sa.Column("content_title", sa.String(500)),
    sa.Column("progress_percent", sa.Float, nullable=False),
    sa.Column("current_time", sa.Integer, nullable=False),
    sa.Column("duration", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("last_watched_at", sa.DateTime),
)

video_progress_summary = _per_learner_table(
    "video_progress_summary",
    sa.Column("total_videos", sa.Integer, nullable=False),
    sa.Column("completed_videos", sa.Integer, nullable=False),
    sa.Column("in_progress_videos", sa.Integer, nullable=False),
    sa.Column("total_duration", sa.Integer, nullable=False),
    sa.Column("total_watched_time", sa.Integer, nullable=False),
    sa.Column("last_watched_at", sa.DateTime),
)

dashboard_summary = _per_learner_table(
    "dashboard_summary",
    sa.Column("overall_completion", sa.Float, nullable=False),
    sa.Column("total_items", sa.Integer, nullable=False),
    sa.Column("completed_items", sa.Integer, nullable=False),
    sa.Column("h5p_total_contents", sa.Integer, nullable=False),
    sa.Column("h5p_completed_contents", sa.Integer, nullable=True),  # NULL: imported from legacy V1 (0008)
    sa.Column("video_total_videos", sa.Integer, nullable=False),
    sa.Column("video_completed_videos", sa.Integer, nullable=True),
)

# --- Features ----------------------------------------------------------------------------

_SQL_TYPES = {"float": sa.Float, "int": sa.Integer, "category": lambda: sa.String(50)}


def _feature_columns() -> list[sa.Column]:
    return [sa.Column(f.name, _SQL_TYPES[f.dtype]()) for f in FEATURES]


student_features = sa.Table(
    "student_features",
    metadata,
    *_learner_columns(),
    *_feature_columns(),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "course_id"),
)


def _snapshot_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        *_learner_columns(),
        *_feature_columns(),
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("snapshot_week", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("user_id", "course_id", "snapshot_date"),
    )


# The history: snapshots replayed `as_of` days 1, 4 and 7 of each course week (and the end
# date), written only by the replay. training_data is frozen from it and from nothing else.
student_features_history = _snapshot_table("student_features_history")

# What each daily refresh saw: the features behind that day's predictions. Never training
# data: a refresh reads the platform at some hour of the day, not at the end of a week.
student_features_daily = _snapshot_table("student_features_daily")

training_data = sa.Table(
    "training_data",
    metadata,
    *_learner_columns(),
    *_feature_columns(),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("snapshot_week", sa.Integer, nullable=False),
    sa.Column("semester", sa.String(50), nullable=False),
    sa.Column("is_passed", sa.Boolean, nullable=False),
    sa.Column("is_dropout", sa.Boolean, nullable=False),
    sa.Column("final_grade", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # weekly: frozen by a replay, what models learn from; end_of_course: a legacy V1 row whose
    # features describe the end of the semester, for evaluation only (feature_tables.learnable)
    sa.Column("snapshot_kind", sa.String(20), nullable=False, server_default="weekly"),
    sa.UniqueConstraint("user_id", "course_id", "snapshot_date"),  # days 1, 4 and 7 of each week
)

# Training bookkeeping lives beside the immutable rows, so no UPDATE is ever needed on
# training_data: `used_in_training` is "has a row here", `training_model` its model.
training_data_usage = sa.Table(
    "training_data_usage",
    metadata,
    sa.Column("training_data_id", sa.BigInteger, sa.ForeignKey("training_data.id"), primary_key=True),
    sa.Column("model_name", sa.String(100), primary_key=True),
    sa.Column("model_version", sa.Integer, primary_key=True),
    sa.Column("used_at", sa.DateTime, nullable=False),
)

# --- Models ------------------------------------------------------------------------------

model_registry = sa.Table(
    "model_registry",
    metadata,
    _id(),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("target", sa.String(50), nullable=False),
    sa.Column("model_path", sa.String(1000), nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("model_type", sa.String(50), nullable=False),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("trained_at", sa.DateTime, nullable=False),
    sa.Column("training_rows", sa.Integer, nullable=False),
    sa.Column("holdout_courses", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.UniqueConstraint("model_name", "model_version"),
)

model_performance = sa.Table(
    "model_performance",
    metadata,
    _id(),
    sa.Column("model_name", sa.String(100), nullable=False, index=True),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("scorer", sa.String(100), nullable=False),
    sa.Column("course_id", COURSE_ID, nullable=False),
    sa.Column("snapshot_week", sa.Integer, nullable=True),
    sa.Column("n_samples", sa.Integer, nullable=False),
    sa.Column("n_positive", sa.Integer, nullable=False),
    sa.Column("roc_auc", DOUBLE),
    sa.Column("pr_auc", DOUBLE),
    sa.Column("accuracy", DOUBLE),
    sa.Column("precision_score", DOUBLE),
    sa.Column("recall_score", DOUBLE),
    sa.Column("f1_score", DOUBLE),
    sa.Column("brier_score", DOUBLE),
    sa.Column("calibration_error", DOUBLE),
    sa.Column("threshold", DOUBLE),
    sa.Column("confusion_matrix", sa.JSON),
    sa.Column("worklist_share", DOUBLE),  # the riskiest share of each course and snapshot date flagged (metrics.worklist_keys)
    sa.Column("worklist_precision", DOUBLE),
    sa.Column("worklist_recall", DOUBLE),
    # The same scorer and week on the training courses' out-of-fold predictions: what a
    # candidate is chosen on, apart from the held-out courses the gate judges (roc_auc).
    sa.Column("selection_roc_auc", DOUBLE),
    sa.Column("selection_n_samples", sa.Integer),
    sa.Column("evaluated_at", sa.DateTime, nullable=False),
)

course_model_mapping = sa.Table(
    "course_model_mapping",
    metadata,
    sa.Column("course_id", COURSE_ID, primary_key=True),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("auto_predict", sa.Boolean, nullable=False, default=True),
    sa.Column("predict_frequency", sa.String(20), nullable=False, default="daily"),
    sa.Column("worklist_share", DOUBLE),  # NULL: modeling.metrics.WORKLIST_SHARE
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# --- Predictions -------------------------------------------------------------------------

predictions = sa.Table(
    "predictions",
    metadata,
    *_learner_columns(),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.Integer, nullable=False),
    sa.Column("fail_risk_score", DOUBLE, nullable=False),
    sa.Column("dropout_risk_score", DOUBLE),
    sa.Column("risk_level", sa.String(10), nullable=False),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("snapshot_grade", sa.Float),
    sa.Column("snapshot_completion_rate", sa.Float),
    sa.Column("reasons", sa.JSON, nullable=False),  # behind the fail-risk score
    sa.Column("dropout_reasons", sa.JSON(none_as_null=True)),  # behind the dropout-risk score (NULL: predicted without a dropout model)
    sa.Column("predicted_at", sa.DateTime, nullable=False),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    sa.Index("ix_predictions_user_course", "user_id", "course_id"),
    # The planner asks each minute when every course was last predicted: answered from
    # this index alone, however long the history grows.
    sa.Index("ix_predictions_latest_by_course", "is_latest", "course_id", "snapshot_date"),
    # The web app: a page of learners' previous predictions (change since last week) and a
    # learner's timeline; a course's runs, week by week (statistics).
    sa.Index("ix_predictions_course_user_date", "course_id", "user_id", "snapshot_date"),
    sa.Index("ix_predictions_course_run", "course_id", "predicted_at", "snapshot_date", "risk_level", "fail_risk_score"),
    # And ix_predictions_latest_ranking: a course's latest rows in the worklist's order, partial
    # where the engine allows (written per engine in migration 0007, as 0002's one-latest index).
)

# --- Web app -----------------------------------------------------------------------------

# Bearer tokens: only the SHA-256 of the secret is stored; the secret is printed once, when
# `dropout-pipeline token create` makes it. A teacher's token is scoped to courses or
# organisations (api_token_scopes); an admin's sees everything.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _id(),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),  # who: shown beside their feedback
    sa.Column("role", sa.String(20), nullable=False),  # teacher | admin
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.UniqueConstraint("token_hash"),
)

api_token_scopes = sa.Table(
    "api_token_scopes",
    metadata,
    sa.Column("token_id", _id().type, sa.ForeignKey("api_tokens.id"), primary_key=True),
    sa.Column("kind", sa.String(10), primary_key=True),  # course | org
    sa.Column("value", COURSE_ID, primary_key=True),
)

# A browser's session after it logged in with a token: the cookie holds a random secret,
# this table its SHA-256, and the CSRF token every form of the session carries.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", _id().type, sa.ForeignKey("api_tokens.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
)

# A teacher's action on a flag: append-only (the database refuses UPDATE and DELETE), with
# who and when. Never read by training or scoring.
prediction_feedback = sa.Table(
    "prediction_feedback",
    metadata,
    _id(),
    sa.Column("prediction_id", _id().type, sa.ForeignKey("predictions.id"), nullable=False, index=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("course_id", COURSE_ID, nullable=False),
    sa.Column("action", sa.String(30), nullable=False),  # contacted | not_useful | incorrectly_flagged
    sa.Column("note", sa.Text),
    sa.Column("token_id", _id().type, sa.ForeignKey("api_tokens.id"), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),  # the token's name when it was given
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_prediction_feedback_course_user", "course_id", "user_id"),
)

# --- Legacy V1 import ----------------------------------------------------------------------

# Source rows of a legacy V1 database not imported, each with why (dropout_pipeline/legacy):
# out-of-range percentages, duplicate keys, no course, a required value missing.
legacy_quarantine = sa.Table(
    "legacy_quarantine",
    metadata,
    _id(),
    sa.Column("source_table", sa.String(64), nullable=False),
    sa.Column("source_id", sa.BigInteger, nullable=False),
    sa.Column("part", sa.String(20), nullable=False),  # row | prediction: what of the source row was left out
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("detail", sa.String(1000), nullable=False),
    sa.Column("course_id", COURSE_ID),
    sa.Column("user_id", sa.BigInteger),
    sa.Column("source_values", sa.JSON, nullable=False),
    sa.Column("quarantined_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("source_table", "source_id", "part"),
)

RAW_TABLES = {
    t.name: t
    for t in (
        enrollments,
        mooc_grades,
        mooc_progress,
        mooc_discussions,
        h5p_scores,
        h5p_scores_summary,
        video_progress,
        video_progress_summary,
        dashboard_summary,
    )
}

# --- Analytics -----------------------------------------------------------------------------

# Each learner's engagement anomaly score (Isolation Forest within the course on the date,
# dropout_pipeline/analytics/anomalies.py), the flag and the threshold it was judged by
# (NULL, nobody flagged: no finished course to choose one from), and the engagement
# features scored. A course's rows are replaced by each run.
engagement_anomalies = sa.Table(
    "engagement_anomalies",
    metadata,
    *_learner_columns(),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("score", DOUBLE),  # 0-1, 1 = most unusual; NULL: too few learners to call one unusual
    sa.Column("is_flagged", sa.Boolean, nullable=False),
    sa.Column("threshold", DOUBLE),
    sa.Column("reliability", DOUBLE, nullable=False),  # how far the score is trusted as evidence of risk (0: not at all)
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "course_id"),
)

# The flag threshold of engagement anomalies as chosen on the finished courses, kept so that
# each course's daily run need not choose it again (a hundred forest fits): training_data is
# insert-only, so its count of learnable rows names the rows a threshold was chosen on.
anomaly_thresholds = sa.Table(
    "anomaly_thresholds",
    metadata,
    sa.Column("training_rows", sa.Integer, primary_key=True),
    sa.Column("threshold", DOUBLE),  # NULL: none could be chosen, nobody is flagged (note says why)
    sa.Column("reliability", DOUBLE, nullable=False),
    sa.Column("f1", DOUBLE),
    sa.Column("precision", DOUBLE),
    sa.Column("recall", DOUBLE),
    sa.Column("flagged_share", DOUBLE),
    sa.Column("courses", sa.JSON, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),  # the week-end rows it was chosen on
    sa.Column("note", sa.String(500), nullable=False),
    sa.Column("chosen_at", sa.DateTime, nullable=False),
)

# Dempster–Shafer fusion of each learner's evidence (dropout_pipeline/analytics/fusion.py):
# belief and plausibility of being at risk, the uncertainty between them, the conflict K of
# the sources, the rule that combined them (dempster, or yager above the conflict limit),
# the category, and every source's mass. A course's rows are replaced by each run.
evidence_fusion = sa.Table(
    "evidence_fusion",
    metadata,
    *_learner_columns(),
    sa.Column("snapshot_date", sa.Date, nullable=False),
    sa.Column("belief", DOUBLE, nullable=False),
    sa.Column("plausibility", DOUBLE, nullable=False),
    sa.Column("uncertainty", DOUBLE, nullable=False),
    sa.Column("conflict", DOUBLE, nullable=False),
    sa.Column("rule", sa.String(10), nullable=False),  # dempster | yager
    sa.Column("category", sa.String(20), nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),  # {source: {"at_risk", "not_at_risk", "either"}}
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "course_id"),
)

# --- The lifecycle's bookkeeping (lifecycle/) ---------------------------------------------

# A planned step taken by one launcher (the lifecycle sensor, the nightly schedule,
# `dropout-pipeline run`, the web app). The primary key makes taking it atomic on every
# engine: two launchers that planned the same step at the same moment launch it once.
step_claims = sa.Table(
    "step_claims",
    metadata,
    sa.Column("step_key", sa.String(400), primary_key=True),  # lifecycle.plan.run_key: the step and its day
    sa.Column("claimed_by", sa.String(50), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
)

# A retrain of a target that gave no model (modeling.retrain.CannotTrain), with the learnable
# rows it saw: the planner tries that target again only once more rows are frozen.
training_attempts = sa.Table(
    "training_attempts",
    metadata,
    _id(),
    sa.Column("model_name", sa.String(100), nullable=False, index=True),
    sa.Column("learnable_rows", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("attempted_at", sa.DateTime, nullable=False),
)

# Each freeze of a finished course: the end it was frozen at and what came of it (frozen, or
# nothing to learn from), so a course leaves the plan even when it gives no training row,
# and a course whose end moves after its freeze is frozen again from its new end.
course_freezes = sa.Table(
    "course_freezes",
    metadata,
    _id(),
    sa.Column("course_id", COURSE_ID, nullable=False, index=True),
    sa.Column("course_end", sa.DateTime, nullable=True),
    sa.Column("outcome", sa.String(30), nullable=False),
    sa.Column("training_rows", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("frozen_at", sa.DateTime, nullable=False),
)
