"""An uploaded file of learner rows: validated, profiled and, where its columns match the
feature dictionary, scored by the default models with their reasons.

Nothing here writes anywhere: the file is analysed in memory and the product's tables
are only read (model_registry, for the default models). Every refusal says what is wrong
and where (the byte offset, the line, the column), so whoever exported the file can fix
it; a list of failing cells is capped at MAX_LISTED_PROBLEMS, with the total.

What a file must hold:
- UTF-8 text (a byte-order mark is allowed); UTF-16/32 and anything that is not UTF-8
  are refused, naming the byte and the line: a guessed encoding silently mangles names;
- a header line, `user_id` (the learner's id, any text) and at least one column named as
  a feature of the dictionary. `course_id` and `snapshot_date` are optional: without
  them the whole file is one class on one day (the cohort a learner's ranks and reasons
  are measured in). `is_passed` and `is_dropout` (0/1, true/false) are optional outcomes.
  Other columns are counted (missing values), neither plotted nor scored;
- numbers where the dictionary has numbers, within its units' ranges (features.validation);
  an empty cell is a missing value, nothing else is;
- no spreadsheet formula: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
  return that is not a number is refused (not neutralised: a formula in a data export
  means the file went through a spreadsheet and its values may not be the exported ones).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.csv_cells import FORMULA_STARTS
from dropout_pipeline.features.build import enforce_feature_types
from dropout_pipeline.features.dictionary import FEATURES, Feature
from dropout_pipeline.features.validation import LABELS, UNIT_RANGES
from dropout_pipeline.modeling.scorers import Scorer
from dropout_pipeline.predictions.run import load_model
from dropout_pipeline.predictions.score import RiskLevels, score_learners
from dropout_pipeline.storage.model_tables import default_model, model_label

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # the whole request body: about 85,000 learner rows with every feature
MAX_LISTED_PROBLEMS = 20
HISTOGRAM_BINS = 20
ID_COLUMN, COURSE_COLUMN, DATE_COLUMN = "user_id", "course_id", "snapshot_date"
OUTCOME_COLUMNS = LABELS  # is_passed, is_dropout
WHOLE_FILE_COHORT = "(the uploaded file)"  # the class of a file without course_id
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
TEXT_COLUMNS = frozenset({ID_COLUMN, COURSE_COLUMN, DATE_COLUMN, *(f.name for f in FEATURES if f.dtype == "category")})
OTHER_ENCODINGS = (  # UTF-32's marks first: UTF-32-LE's starts with UTF-16-LE's
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)
TRUE_WORDS, FALSE_WORDS = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})
RejectionKind = Literal["too_large", "encoding", "schema", "formula"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (line, counting the header as line 1; column) and what."""

    message: str
    line: int | None = None
    column: str | None = None

    def located(self) -> str:
        where = ", ".join(part for part in (f"line {self.line}" if self.line else "", f"column {self.column}" if self.column else "") if part)
        return f"{where}: {self.message}" if where else self.message


class UploadRejected(ValueError):
    """The file cannot be analysed; `kind` says which rule it broke (the web answers
    too_large with 413, the others with 422)."""

    def __init__(self, kind: RejectionKind, summary: str, problems: list[Problem] | None = None, total: int | None = None):
        self.kind, self.summary, self.problems = kind, summary, (problems or [])[:MAX_LISTED_PROBLEMS]
        self.total = total if total is not None else len(problems or [])
        listed = "; ".join(problem.located() for problem in self.problems)
        more = f" (and {self.total - len(self.problems)} more)" if self.total > len(self.problems) else ""
        super().__init__(f"{summary}: {listed}{more}" if listed else summary)


def too_large(limit: int = MAX_UPLOAD_BYTES) -> UploadRejected:
    return UploadRejected("too_large", f"the upload is larger than the limit of {limit // (1024 * 1024)} MB: split the file, or leave out columns the analysis does not need")


@dataclass(frozen=True)
class UploadModels:
    """The default models an upload is scored with, and how they are named to people."""

    fail: Scorer
    fail_label: str
    dropout: Scorer | None = None
    dropout_label: str | None = None


def default_upload_models(connection: sa.Connection) -> UploadModels | None:
    """The current default fail (and dropout) models, from model_registry; None before the first training."""
    fail, dropout = default_model(connection, "fail"), default_model(connection, "dropout")
    if fail is None:
        return None
    return UploadModels(
        load_model(fail["model_path"]), model_label(fail),
        load_model(dropout["model_path"]) if dropout else None, model_label(dropout),
    )


# Reading


def decoded(data: bytes) -> str:
    """The file as text, if it is UTF-8 (with or without a byte-order mark); never a guess."""
    for mark, name in OTHER_ENCODINGS:
        if data.startswith(mark):
            raise UploadRejected("encoding", f"the file is {name} (its first bytes say so), not UTF-8: save or export it as UTF-8 (CSV UTF-8) and upload it again",
                                 [Problem(f"byte 0 starts a {name} byte-order mark", line=1)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error.start, f"byte {data[error.start]:#04x} at offset {error.start} is not valid UTF-8 there") from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(text[:nul].encode("utf-8")) + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise _not_utf8(data, offset, f"byte {offset} is a NUL byte, which a UTF-8 text file never holds (UTF-16 without a byte-order mark looks like this)")
    return text


def _not_utf8(data: bytes, offset: int, what: str) -> UploadRejected:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return UploadRejected(
        "encoding", f"the file is not UTF-8 (line {line}, byte {column} of the line): save or export it as UTF-8 (CSV UTF-8) and upload it again",
        [Problem(what, line=line)],
    )


def read_cells(text: str) -> pd.DataFrame:
    """The file as a table: the id, course, date and category columns as text, the others as
    the CSV parser reads them (a column of numbers as numbers, at C speed; a column with
    anything else in it as text, which the checks then look at cell by cell). Only an
    empty cell is missing: "NA", "null" or "nan" are text like any other."""
    try:
        header = next(csv.reader(io.StringIO(text[: text.find("\n") + 1 or len(text)])), None)
    except csv.Error as error:
        raise UploadRejected("schema", f"the header line is not readable CSV: {error}", [Problem(str(error), line=1)]) from None
    if not header or not any(name.strip() for name in header):
        raise UploadRejected("schema", "the file is empty: it needs a header line naming its columns, then one line per learner")
    names = [name.strip() for name in header]
    problems = [Problem("a column has no name in the header", line=1, column=f"#{i + 1}") for i, name in enumerate(names) if not name]
    problems += [Problem("the column is named twice in the header", line=1, column=name) for name in sorted({n for n in names if n and names.count(n) > 1})]
    if problems:
        raise UploadRejected("schema", "the header line is not usable", problems)
    try:
        read = pd.read_csv(io.StringIO(text), header=0, names=names, dtype={name: str for name in names if name in TEXT_COLUMNS},
                           keep_default_na=False, na_values=[""], true_values=[], false_values=[], skip_blank_lines=False)
    except pd.errors.ParserError as error:
        raise _ragged(str(error), len(names)) from None
    return read.dropna(how="all")  # blank lines go, each row keeps its place in the file (its index), which errors name


def _ragged(message: str, width: int) -> UploadRejected:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found is None:
        return UploadRejected("schema", f"the file is not a readable CSV: {message}")
    line, cells = int(found.group(2)), int(found.group(3))
    return UploadRejected("schema", "a line has more cells than the header names columns", [Problem(f"{cells} cells, the header names {width}", line=line)])


# Checking


@dataclass
class UploadRows:
    """The file's rows with typed columns: numbers as floats (NaN: missing), the rest text."""

    frame: pd.DataFrame
    features: list[str]  # the dictionary's features the file has, in the dictionary's order
    other_columns: list[str]
    outcomes: list[str]
    numeric: list[str]  # the columns profiled as numbers: numeric features and outcomes


def _line_numbers(mask: pd.Series) -> np.ndarray:
    """The file's lines of the rows a mask picks (data row 0 is line 2, blank lines counted;
    a quoted cell spanning lines is counted as one)."""
    return mask.index.to_numpy()[mask.to_numpy()] + 2


def _is_text(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def formula_cells(cells: pd.DataFrame) -> list[Problem]:
    """Cells a spreadsheet would run: text starting with = + - @ (or a tab or CR) that is not
    a number. A column the parser read as numbers holds none."""
    problems = []
    for column in cells.columns:
        if not _is_text(cells[column]):
            continue
        text = cells[column].fillna("")
        risky = text.str.startswith(FORMULA_STARTS)
        if risky.any():
            risky &= pd.to_numeric(text.where(risky, "0"), errors="coerce").isna()
            problems += [Problem("the cell starts like a spreadsheet formula (=, +, -, @) and is not a number", line=int(line), column=column)
                         for line in _line_numbers(risky)]
    return problems


def _required_columns(columns: list[str]) -> list[Problem]:
    problems = []
    if ID_COLUMN not in columns:
        problems.append(Problem("required column missing: the learner's id", column=ID_COLUMN))
    if not any(name in FEATURES_BY_NAME for name in columns):
        examples = ", ".join(f.name for f in FEATURES[:4])
        problems.append(Problem(f"no column is a feature of the dictionary (docs/feature_dictionary.md): at least one is needed, e.g. {examples}"))
    return problems


def _listed(mask: pd.Series, shown: pd.Series, column: str, message: str) -> list[Problem]:
    """A problem per row of `mask`, its message formatted with the row's `shown` value."""
    if not mask.any():
        return []
    return [Problem(message.format(value), line=int(line), column=column) for line, value in zip(_line_numbers(mask), shown[mask], strict=True)]


def _numbers(column: str, values: pd.Series, feature: Feature) -> tuple[pd.Series, list[Problem]]:
    """A feature's column as floats, with every cell that is not a number within its unit's range."""
    if _is_text(values):
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        problems = _listed(values.notna() & numbers.isna(), values, column, "{!r} is not a number")
    else:
        numbers, problems = values.astype("float64"), []
    low, high = UNIT_RANGES.get(feature.unit, (None, None))
    outside = numbers.notna() & ~np.isfinite(numbers.fillna(0))
    if low is not None:
        outside |= numbers < low
    if high is not None:
        outside |= numbers > high
    span = f"{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
    problems += _listed(outside, numbers, column, "{:g} is outside " + f"{span} ({feature.unit})")
    if feature.dtype == "int":
        problems += _listed(numbers.notna() & ~outside & (numbers != np.floor(numbers)), numbers, column, "{:g} is not a whole number")
    return numbers, problems


def _outcome_values(column: str, values: pd.Series) -> tuple[pd.Series, list[Problem]]:
    """An outcome as 1.0 / 0.0 (NaN: unknown) from 1/0, true/false or yes/no."""
    if _is_text(values):
        lowered = values.str.strip().str.lower()
        outcome = pd.Series(np.where(lowered.isin(TRUE_WORDS), 1.0, np.where(lowered.isin(FALSE_WORDS), 0.0, np.nan)), index=values.index)
        return outcome, _listed(values.notna() & outcome.isna(), values, column, "{!r} is not an outcome (1/0, true/false)")
    outcome = values.astype("float64")
    return outcome, _listed(outcome.notna() & ~outcome.isin([0.0, 1.0]), outcome, column, "{:g} is not an outcome (1/0, true/false)")


def checked_rows(cells: pd.DataFrame) -> UploadRows:
    """The cells checked (columns, formulas, numbers and ranges, outcomes, ids, dates) and typed."""
    columns = list(cells.columns)
    problems = _required_columns(columns)
    if problems:
        raise UploadRejected("schema", "the file does not have the columns an analysis needs", problems)
    if cells.empty:
        raise UploadRejected("schema", "the file has a header but no learner rows")
    formulas = formula_cells(cells)
    if formulas:
        raise UploadRejected("formula", f"{len(formulas)} cells hold spreadsheet formulas, not values: export the data again as plain values", formulas)
    frame = pd.DataFrame(index=cells.index)
    problems, numeric = [], []
    for column in columns:
        values, feature = cells[column], FEATURES_BY_NAME.get(column)
        found: list[Problem] = []
        if column in OUTCOME_COLUMNS:
            frame[column], found = _outcome_values(column, values)
            numeric.append(column)
        elif feature is not None and feature.dtype != "category":
            frame[column], found = _numbers(column, values, feature)
            numeric.append(column)
        elif column == DATE_COLUMN:
            frame[column] = pd.to_datetime(values, errors="coerce", format="ISO8601").dt.date
            found = _listed(values.notna() & frame[column].isna(), values, column, "{!r} is not a date (YYYY-MM-DD)")
        else:
            frame[column] = values.astype(object).where(values.notna(), None)
            if column == ID_COLUMN:
                found = _listed(values.isna(), values, column, "the learner's id is empty")
        problems += found
    if problems:
        problems.sort(key=lambda p: (p.line or 0, columns.index(p.column) if p.column in columns else -1))
        raise UploadRejected("schema", f"{len(problems)} cells break the file's schema", problems)
    features = [f.name for f in FEATURES if f.name in frame.columns]
    others = [c for c in columns if c not in FEATURES_BY_NAME and c not in OUTCOME_COLUMNS and c not in (ID_COLUMN, COURSE_COLUMN, DATE_COLUMN)]
    return UploadRows(frame, features, others, [c for c in OUTCOME_COLUMNS if c in frame.columns], numeric)


# Profiling


def _box(values: np.ndarray) -> dict:
    """Tukey's box: quartiles, and whiskers at the furthest values within 1.5 IQR."""
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    reach = 1.5 * (q3 - q1)
    inside = values[(values >= q1 - reach) & (values <= q3 + reach)]
    return {"n": int(len(values)), "low": float(inside.min()), "q1": float(q1), "median": float(median), "q3": float(q3), "high": float(inside.max()),
            "outliers": int(len(values) - len(inside))}


def _distribution(column: str, values: pd.Series) -> dict:
    known = values.dropna().to_numpy(dtype=float)
    if not len(known):
        return {"column": column, "edges": [], "counts": []}
    low, high = float(known.min()), float(known.max())
    bins = min(HISTOGRAM_BINS, max(1, len(np.unique(known)))) if high > low else 1
    counts, edges = np.histogram(known, bins=bins, range=(low, high) if high > low else (low - 0.5, high + 0.5))
    return {"column": column, "edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _box_plots(frame: pd.DataFrame, columns: list[str], outcome: str) -> dict:
    known = frame[outcome].notna()
    groups = {label: frame.loc[known & (frame[outcome] == value)] for label, value in ((f"{outcome} = 0", 0.0), (f"{outcome} = 1", 1.0))}
    plots = []
    for column in columns:
        boxes = [{"group": label, **_box(values)} for label, rows in groups.items() if len(values := rows[column].dropna().to_numpy(dtype=float))]
        if boxes:
            plots.append({"column": column, "boxes": boxes})
    return {"by": outcome, "columns": plots}


def _correlations(frame: pd.DataFrame, columns: list[str]) -> dict:
    varying = [c for c in columns if frame[c].nunique(dropna=True) > 1]
    if len(varying) < 2:
        return {"columns": varying, "matrix": []}
    matrix = frame[varying].corr(method="pearson").to_numpy()
    return {"columns": varying, "matrix": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in matrix]}


def profile(rows: UploadRows) -> dict:
    """Records, features, outcome rates, missing values per column, correlations, and the
    numbers behind the distributions and the box plots by outcome (the first outcome the
    file has: is_passed, else is_dropout)."""
    frame = rows.frame
    features = [c for c in rows.numeric if c not in OUTCOME_COLUMNS]
    outcomes = []
    for name in rows.outcomes:
        known = frame[name].dropna()
        outcomes.append({"outcome": name, "known": int(len(known)), "positive": int(known.sum()), "rate": float(known.mean()) if len(known) else None})
    missing = frame.isna().sum()
    return {
        "records": len(frame),
        "columns": len(frame.columns),
        "features": len(rows.features),
        "feature_columns": rows.features,
        "other_columns": rows.other_columns,
        "outcomes": outcomes,
        "missing": [{"column": c, "missing": int(missing[c]), "share": float(missing[c] / len(frame))} for c in frame.columns],
        "correlations": _correlations(frame, rows.numeric),
        "distributions": [_distribution(c, frame[c]) for c in features],
        "categories": [{"column": c, "counts": {str(k): int(v) for k, v in frame[c].value_counts(dropna=True).head(HISTOGRAM_BINS).items()}}
                       for c in rows.features if FEATURES_BY_NAME[c].dtype == "category"],
        "box_plots": _box_plots(frame, features, rows.outcomes[0]) if rows.outcomes else None,
    }


# Scoring


def _cohorts(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with the keys the scorers group classes by: a file without them is one class on one day."""
    keyed = frame.copy()
    if COURSE_COLUMN not in keyed.columns:
        keyed[COURSE_COLUMN] = WHOLE_FILE_COHORT
    keyed[COURSE_COLUMN] = keyed[COURSE_COLUMN].fillna(WHOLE_FILE_COHORT)
    if DATE_COLUMN not in keyed.columns:
        keyed[DATE_COLUMN] = None
    keyed[DATE_COLUMN] = keyed[DATE_COLUMN].astype(object).where(keyed[DATE_COLUMN].notna(), "")
    return keyed


def scored(rows: UploadRows, models: UploadModels | None, levels: RiskLevels = RiskLevels()) -> dict:
    """Every row scored as the pipeline scores a course (per class and day: ranks and reasons
    are within it), riskiest first, when the file has every feature the models read;
    otherwise the columns it lacks."""
    if models is None:
        return {"scored": False, "message": "no model is trained yet: the file is profiled, not scored", "missing_columns": [], "models": {}, "scored_rows": 0, "rows": []}
    needed = list(dict.fromkeys([*models.fail.features, *(models.dropout.features if models.dropout else [])]))
    missing = [name for name in needed if name not in rows.frame.columns]
    labels = {"fail": models.fail_label, "dropout": models.dropout_label}
    if missing:
        return {"scored": False, "message": f"not scored: the models read {len(needed)} features and the file lacks {len(missing)} of them",
                "missing_columns": missing, "models": labels, "scored_rows": 0, "rows": []}
    keyed = _cohorts(rows.frame)
    parts = [score_learners(enforce_feature_types(group), models.fail, models.dropout, levels)
             for _key, group in keyed.groupby([COURSE_COLUMN, DATE_COLUMN], sort=False)]
    result = pd.concat(parts).sort_values("fail_risk_score", ascending=False, kind="mergesort")
    result["course_id"] = result["course_id"].where(result["course_id"] != WHOLE_FILE_COHORT, None)
    result["snapshot_date"] = result["snapshot_date"].where(result["snapshot_date"] != "", None)
    listed = result[["user_id", "course_id", "snapshot_date", "fail_risk_score", "dropout_risk_score", "risk_level", "reasons", "dropout_reasons"]]
    records = listed.astype(object).where(listed.notna(), None).to_dict("records")
    counts = result["risk_level"].value_counts()
    return {"scored": True, "message": f"{len(records)} rows scored", "missing_columns": [], "models": labels, "scored_rows": len(records),
            "risk_levels": {level: int(counts.get(level, 0)) for level in ("HIGH", "MEDIUM", "LOW")}, "rows": records}


def analyse_upload(data: bytes, models: UploadModels | None, levels: RiskLevels = RiskLevels()) -> dict:
    """The whole analysis of one uploaded file's bytes: checked, profiled, scored."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_large()
    rows = checked_rows(read_cells(decoded(data)))
    return {"profile": profile(rows), "scores": scored(rows, models, levels)}
