"""The bodies of POST /api/v1/uploads, as pydantic models (what /docs shows and every answer
is checked against): an uploaded file's profile and scores, and its refusals, which name
the line as well as the column."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from dropout_pipeline.web.schemas import FieldError, Reason, RiskCounts, RiskLevel


class UploadFieldError(FieldError):
    line: int | None = Field(default=None, description="the line of the file (the header is line 1), when the problem is on one")


class UploadError(BaseModel):
    detail: str
    errors: list[UploadFieldError] = []


class OutcomeRate(BaseModel):
    outcome: str
    known: int = Field(description="rows with the outcome filled in")
    positive: int
    rate: float | None


class MissingValues(BaseModel):
    column: str
    missing: int
    share: float


class Correlations(BaseModel):
    columns: list[str] = Field(description="the numeric columns with two values or more")
    matrix: list[list[float | None]] = Field(description="Pearson correlation, row by row in `columns` order; null where undefined")


class Distribution(BaseModel):
    column: str
    edges: list[float] = Field(description="bin edges: one more than the counts")
    counts: list[int]


class CategoryCounts(BaseModel):
    column: str
    counts: dict[str, int]


class Box(BaseModel):
    group: str
    n: int
    low: float = Field(description="lower whisker: the lowest value within 1.5 IQR of the first quartile")
    q1: float
    median: float
    q3: float
    high: float
    outliers: int = Field(description="values beyond the whiskers")


class BoxPlot(BaseModel):
    column: str
    boxes: list[Box]


class BoxPlots(BaseModel):
    by: str = Field(description="the outcome the boxes are split by (is_passed, else is_dropout)")
    columns: list[BoxPlot]


class UploadProfile(BaseModel):
    records: int
    columns: int
    features: int = Field(description="columns that are features of the dictionary")
    feature_columns: list[str]
    other_columns: list[str] = Field(description="columns neither features, outcomes nor keys: counted, neither plotted nor scored")
    outcomes: list[OutcomeRate]
    missing: list[MissingValues]
    correlations: Correlations
    distributions: list[Distribution]
    categories: list[CategoryCounts]
    box_plots: BoxPlots | None


class ScoredRow(BaseModel):
    user_id: str
    course_id: str | None
    snapshot_date: date | None
    fail_risk_score: float
    dropout_risk_score: float | None
    risk_level: RiskLevel
    reasons: list[Reason]
    dropout_reasons: list[Reason] | None


class UploadScores(BaseModel):
    scored: bool
    message: str
    missing_columns: list[str] = Field(description="the features the models read that the file lacks (then nothing is scored)")
    models: dict[str, str | None] = Field(description="the default models that scored the rows (fail, dropout)")
    scored_rows: int = Field(description="rows scored: all of the file's, or none")
    risk_levels: RiskCounts | None = Field(default=None, description="rows per risk level, over every row scored")
    rows: list[ScoredRow] = Field(description="the riskiest rows first, as many as `rows` asks for")


class UploadAnalysis(BaseModel):
    profile: UploadProfile
    scores: UploadScores
