"""The API's bodies, as pydantic models: what /docs shows and every response is checked against."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dropout_pipeline.storage.web_tables import FEEDBACK_ACTIONS

RiskLevel = Literal["HIGH", "MEDIUM", "LOW"]
# Times are stored as naive UTC: said so on the way out ("2026-11-22T06:00:00Z").
datetime = Annotated[datetime, AfterValidator(lambda moment: moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))]  # noqa: F811
FeedbackAction = Literal[FEEDBACK_ACTIONS]  # type: ignore[valid-type]


class FieldError(BaseModel):
    field: str | None = Field(description="the parameter or body field at fault")
    in_: str | None = Field(alias="in", description="path, query, body or header")
    message: str
    model_config = ConfigDict(populate_by_name=True)


class Error(BaseModel):
    detail: str
    errors: list[FieldError] = []


class Reason(BaseModel):
    feature: str
    text: str
    kind: Literal["risk", "protective"] = Field("risk", description="risk: raised the score; protective: what keeps a LOW score low (its text starts \"In their favour: \"). A reason stored without a kind (by an earlier version) is a risk factor")
    contribution: float | None = None
    value: float | str | None = None
    classmates_better_off: float | None = Field(None, description="risk factor: % of classmates better off on the feature, as shown")
    classmates_worse_off: float | None = Field(None, description="protective factor: % of classmates worse off on the feature, as shown")


class RiskCounts(BaseModel):
    HIGH: int
    MEDIUM: int
    LOW: int


class Course(BaseModel):
    course_id: str
    display_name: str
    org: str
    start: datetime
    end: datetime | None
    state: Literal["upcoming", "running", "finished"]
    learners: int
    risk_levels: RiskCounts = Field(description="learners per level in the latest predictions")
    not_predicted: int = Field(description="enrolled learners without a prediction yet")
    last_predicted_at: datetime | None
    latest_predictions_model: str | None = Field(description="the model that made the latest predictions")
    serving_model: str | None = Field(description="the model that predicts the course next (its mapping, else the default)")


class CourseList(BaseModel):
    courses: list[Course]


class Previous(BaseModel):
    fail_risk_score: float
    risk_level: str
    snapshot_date: date


class FeedbackEntry(BaseModel):
    id: int
    prediction_id: int
    action: FeedbackAction
    note: str | None
    created_by: str
    created_at: datetime


class Student(BaseModel):
    user_id: int
    username: str | None
    full_name: str | None
    email: str | None
    is_active: bool
    predicted: bool
    status: Literal["predicted", "not predicted yet"]
    prediction_id: int | None
    fail_risk_score: float | None = Field(description="0-100; null until the learner is first predicted")
    dropout_risk_score: float | None
    risk_level: RiskLevel | None
    reasons: list[Reason] | None
    dropout_reasons: list[Reason] | None
    snapshot_date: date | None
    snapshot_grade: float | None
    snapshot_completion_rate: float | None
    predicted_at: datetime | None
    model: str | None
    previous: Previous | None = Field(description="the newest prediction made a week or more before the latest")
    change: float | None = Field(description="fail risk now minus then, in points")
    on_worklist: bool
    latest_feedback: FeedbackEntry | None


class WorklistInfo(BaseModel):
    share: float
    length: int


class StudentPage(BaseModel):
    course_id: str
    total: int
    page: int
    page_size: int
    pages: int
    latest_predictions_on: date | None
    compared_with_on_or_before: date | None
    worklist: WorklistInfo
    students: list[Student]


class Bin(BaseModel):
    from_: int = Field(alias="from")
    to: int
    learners: int
    model_config = ConfigDict(populate_by_name=True)


class WeekStatistics(BaseModel):
    week: int
    snapshot_date: date
    predicted_at: datetime
    learners: int
    risk_levels: RiskCounts
    mean_fail_risk: float | None
    distribution: list[Bin]


class Statistics(BaseModel):
    course_id: str
    enrolled: int
    predicted: int
    not_predicted: int
    weeks: list[WeekStatistics]


class FeatureValue(BaseModel):
    name: str
    meaning: str
    unit: str
    value: float | int | str | None


class Enrolment(BaseModel):
    user_id: int
    username: str | None
    full_name: str | None
    email: str | None
    mode: str | None
    is_active: bool
    created: datetime


class TimelineEntry(BaseModel):
    prediction_id: int
    predicted_at: datetime
    snapshot_date: date
    week: int
    model: str
    fail_risk_score: float
    dropout_risk_score: float | None
    risk_level: RiskLevel
    snapshot_grade: float | None
    snapshot_completion_rate: float | None
    reasons: list[Reason]
    dropout_reasons: list[Reason] | None
    is_latest: bool


class WeekPoint(BaseModel):
    week: int
    snapshot_date: date
    fail_risk_score: float
    dropout_risk_score: float | None
    grade: float | None
    risk_level: RiskLevel


class Learner(BaseModel):
    course_id: str
    user_id: int
    enrolment: Enrolment
    features_on: date | None
    features: list[FeatureValue]
    predicted: bool
    timeline: list[TimelineEntry]
    weekly: list[WeekPoint]
    feedback: list[FeedbackEntry]


class FeedbackIn(BaseModel):
    action: FeedbackAction
    note: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")
    model_config = ConfigDict(extra="forbid")


class RunQueued(BaseModel):
    run_id: str
    course_id: str
    queued: bool = Field(description="false when a refresh of the course was already queued or running: its run is returned")
    status_url: str


class RunStatus(BaseModel):
    run_id: str
    job_name: str
    course_id: str | None
    status: str
    requested_by: str | None
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    finished: bool
    failure: str | None


class ModelVersion(BaseModel):
    model_name: str
    model_version: int
    target: str
    model_type: str
    domain: str
    trained_at: datetime
    training_rows: int
    holdout_courses: list[str]
    is_active: bool
    is_default: bool
    candidate: str | None
    early_weeks_roc_auc: dict[str, float | None]


class ModelSummary(BaseModel):
    model_name: str
    target: str
    versions: list[ModelVersion]


class ModelList(BaseModel):
    models: list[ModelSummary]


class ConfusionMatrix(BaseModel):
    tn: int
    fp: int
    fn: int
    tp: int


class Metrics(BaseModel):
    scorer: str
    n_samples: int
    n_positive: int
    roc_auc: float | None
    pr_auc: float | None
    accuracy: float | None
    precision_score: float | None
    recall_score: float | None
    f1_score: float | None
    brier_score: float | None
    calibration_error: float | None
    threshold: float | None
    confusion_matrix: ConfusionMatrix | None
    worklist_share: float | None
    worklist_precision: float | None
    worklist_recall: float | None


class WeekMetrics(Metrics):
    week: int


class CourseMetrics(Metrics):
    course_id: str


class ReliabilityBin(BaseModel):
    bin: str
    n: int
    mean_predicted: float
    observed_rate: float


class VersionPerformance(ModelVersion):
    overall: list[Metrics]
    per_week: list[WeekMetrics]
    per_course: list[CourseMetrics]
    reliability: list[ReliabilityBin] | None = Field(description="held-out rows by predicted risk, from the model's materialization; null when Dagster's instance holds none")


class TrendPoint(BaseModel):
    model_version: int
    trained_at: datetime
    candidate: str
    roc_auc: float | None
    early_weeks_roc_auc: float | None = Field(description="mean ROC AUC over course weeks 1-4")
    calibration_error: float | None
    is_default: bool


class ModelPerformance(BaseModel):
    model_name: str
    target: str
    versions: list[VersionPerformance]
    trend: list[TrendPoint]
