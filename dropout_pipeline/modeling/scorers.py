"""What learns and scores: the candidate models (CatBoost, logistic regression) and the
rule a teacher would use by hand, which both must beat.

CatBoost handles categorical features natively (passed as plain `str` columns: see
features.build.enforce_feature_types). Training is deterministic: a fixed seed and
thread count, and rows sorted by key before fitting, so the same data gives the same
model and the same metrics.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from dropout_pipeline.features.dictionary import CATEGORICAL_FEATURES, FEATURE_NAMES
from dropout_pipeline.modeling.calibration import PlattCalibration
from dropout_pipeline.modeling.split import stable_rank

TARGETS = {"fail": "fail", "dropout": "is_dropout"}
SEED = 20261122
INACTIVE_DAYS_FOR_RULE = 14
DEFAULT_ITERATIONS = 300  # CatBoost trees when no validation fold can be spared
MAX_ITERATIONS, MIN_ITERATIONS, EARLY_STOPPING_ROUNDS = 1000, 50, 60
LOGISTIC_C = 0.5  # L2 strength: mild, the features being scaled


def target_values(frame: pd.DataFrame, target: str) -> pd.Series:
    """`fail` is the complement of the platform's pass verdict; `dropout` is is_dropout."""
    if target == "fail":
        return (~frame["is_passed"].astype(bool)).astype(int)
    return frame["is_dropout"].astype(bool).astype(int)


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["course_id", "user_id", "snapshot_date"], kind="mergesort").reset_index(drop=True)


class Scorer:
    """What every candidate model offers: raw and calibrated probabilities, per-feature
    contributions in log-odds (the reasons), importance, and a saved form. Subclasses
    are dataclasses with `features` and `calibration` fields."""

    features: list[str]
    calibration: PlattCalibration | None
    model_type: str
    suffix: str

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        raise NotImplementedError

    def refit_settings(self) -> dict:
        """What a refit on other rows must reuse (CatBoost: the tree count early stopping chose)."""
        return {}

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """The risk as a probability: calibrated when a calibration was fitted."""
        raw = self.raw_proba(frame)
        return self.calibration(raw) if self.calibration else raw

    def calibrated(self, calibration: PlattCalibration | None) -> Scorer:
        return dataclasses.replace(self, calibration=calibration)

    def save(self, path: Path) -> None:
        """The model at `path` (its suffix: the kind), its feature list and calibration beside it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._save_model(path)
        path.with_suffix(".features.json").write_text(json.dumps(self.features))
        if self.calibration:
            path.with_suffix(".calibration.json").write_text(json.dumps(dataclasses.asdict(self.calibration)))

    def _save_model(self, path: Path) -> None:
        raise NotImplementedError


def _sidecars(path: Path) -> tuple[list[str], PlattCalibration | None]:
    calibration_file = path.with_suffix(".calibration.json")
    calibration = PlattCalibration(**json.loads(calibration_file.read_text())) if calibration_file.exists() else None
    return json.loads(path.with_suffix(".features.json").read_text()), calibration


def _course_grouped_validation(courses: pd.Series) -> list[np.ndarray]:
    """Validation folds for early stopping, as row masks: about a fifth of the courses
    (in the holdout's stable order) with three or more; with two, each in turn; none with one."""
    unique = sorted(courses.unique(), key=stable_rank)
    if len(unique) < 2:
        return []
    held = [unique[: max(1, len(unique) // 5)]] if len(unique) >= 3 else [[course] for course in unique]
    return [courses.isin(set(group)).to_numpy() for group in held]


@dataclass
class CatBoostScorer(Scorer):
    model: CatBoostClassifier
    features: list[str]
    calibration: PlattCalibration | None = None  # maps raw probabilities to calibrated ones (modeling.calibration)
    iterations: int = DEFAULT_ITERATIONS
    model_type = "CatBoostClassifier"
    suffix = ".cbm"

    @staticmethod
    def _classifier(iterations: int) -> CatBoostClassifier:
        # Set up for small data: shallow trees, strong L2, a modest rate; the tree count
        # comes from early stopping on courses the fit did not see.
        return CatBoostClassifier(
            iterations=iterations, depth=4, learning_rate=0.08, l2_leaf_reg=8, loss_function="Logloss",
            random_seed=SEED, thread_count=2, verbose=False, allow_writing_files=False,
        )

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str, iterations: int | None = None) -> CatBoostScorer:
        """With `iterations` None, the count is found by early stopping on a course-grouped
        validation fold, then the model is fitted on every row with it."""
        train = ordered(train)
        features = list(FEATURE_NAMES)
        pool = lambda rows: Pool(rows[features], target_values(rows, target), cat_features=list(CATEGORICAL_FEATURES))  # noqa: E731
        iterations = iterations or cls._early_stopped_iterations(train, target, pool)
        model = cls._classifier(iterations)
        model.fit(pool(train))
        return cls(model, features, iterations=iterations)

    @classmethod
    def _early_stopped_iterations(cls, train: pd.DataFrame, target: str, pool) -> int:
        """The mean best tree count over the validation folds whose both sides hold both outcomes."""
        y = target_values(train, target).to_numpy()
        best = []
        for validation in _course_grouped_validation(train["course_id"]):
            if len(np.unique(y[validation])) == 2 and len(np.unique(y[~validation])) == 2:
                probe = cls._classifier(MAX_ITERATIONS)
                probe.fit(pool(train[~validation]), eval_set=pool(train[validation]), early_stopping_rounds=EARLY_STOPPING_ROUNDS, use_best_model=True)
                best.append(probe.get_best_iteration() + 1)
        return max(int(np.mean(best)), MIN_ITERATIONS) if best else DEFAULT_ITERATIONS

    def refit_settings(self) -> dict:
        return {"iterations": self.iterations}

    def pool(self, frame: pd.DataFrame) -> Pool:
        categorical = [f for f in self.features if f in CATEGORICAL_FEATURES]
        return Pool(frame[self.features], cat_features=categorical)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.pool(frame))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row SHAP values (log-odds), one column per feature, bias column dropped."""
        return self.model.get_feature_importance(self.pool(frame), type="ShapValues")[:, :-1]

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        values = self.model.get_feature_importance()
        pairs = sorted(zip(self.features, values, strict=False), key=lambda pair: -pair[1])[:top]
        return {name: round(float(value), 3) for name, value in pairs}

    def _save_model(self, path: Path) -> None:
        self.model.save_model(str(path))

    @classmethod
    def load(cls, path: Path) -> CatBoostScorer:
        """A saved model; one saved before calibration existed loads without one (raw scores)."""
        model = CatBoostClassifier()
        model.load_model(str(path))
        features, calibration = _sidecars(path)
        return cls(model, features, calibration, iterations=model.tree_count_)


@dataclass
class LogisticScorer(Scorer):
    """Logistic regression on scaled numbers with an indicator for each missing value, and
    one-hot categories: few parameters, so it holds up where data is scarce and noisy."""

    model: Pipeline
    column_means: np.ndarray  # of the transformed training rows: the point contributions are measured from
    features: list[str]
    calibration: PlattCalibration | None = None
    model_type = "LogisticRegression"
    suffix = ".joblib"

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str) -> LogisticScorer:
        train = ordered(train)
        features = list(FEATURE_NAMES)
        numeric = [f for f in features if f not in CATEGORICAL_FEATURES]
        model = make_pipeline(
            ColumnTransformer(
                [
                    ("numeric", make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), StandardScaler()), numeric),
                    ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
                ]
            ),
            LogisticRegression(C=LOGISTIC_C, max_iter=5000),
        )
        model.fit(train[features], target_values(train, target))
        return cls(model, _dense(model[0].transform(train[features])).mean(axis=0), features)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(frame[self.features])[:, 1]

    def _source_feature(self) -> np.ndarray:
        """For each column the model sees, the index of the feature it comes from."""
        names = self.model[0].get_feature_names_out()
        lookup = {name: i for i, name in enumerate(self.features)}

        def source(column: str) -> int:
            part, _, rest = column.partition("__")
            if part == "numeric":
                return lookup[rest.removeprefix("missingindicator_")]
            return next(i for name, i in sorted(lookup.items(), key=lambda item: -len(item[0])) if rest.startswith(f"{name}_"))

        return np.array([source(column) for column in names])

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Exact log-odds contributions of a linear model: coefficient x (value - its training
        mean), summed over the columns each feature became (scaled value, missing
        indicator, one-hot categories)."""
        centred = (_dense(self.model[0].transform(frame[self.features])) - self.column_means) * self.model[-1].coef_[0]
        sources = self._source_feature()
        out = np.zeros((len(frame), len(self.features)))
        for column, feature in enumerate(sources):
            out[:, feature] += centred[:, column]
        return out

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        weights = np.zeros(len(self.features))
        for column, feature in enumerate(self._source_feature()):
            weights[feature] += abs(self.model[-1].coef_[0][column])
        pairs = sorted(zip(self.features, weights, strict=False), key=lambda pair: -pair[1])[:top]
        return {name: round(float(value), 3) for name, value in pairs}

    def _save_model(self, path: Path) -> None:
        joblib.dump({"model": self.model, "column_means": self.column_means}, path)

    @classmethod
    def load(cls, path: Path) -> LogisticScorer:
        """Our own file from the models directory (joblib unpickles: never load one from elsewhere)."""
        saved = joblib.load(path)
        features, calibration = _sidecars(path)
        return cls(saved["model"], saved["column_means"], features, calibration)


CANDIDATES: dict[str, type[Scorer]] = {"catboost": CatBoostScorer, "logistic_regression": LogisticScorer}


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)


def load_scorer(path: Path) -> Scorer:
    """A saved model of any candidate kind, told apart by its file's suffix."""
    kind = next((kind for kind in CANDIDATES.values() if path.suffix == kind.suffix), None)
    if kind is None:
        raise ValueError(f"{path}: not a saved model (expected one of {', '.join(k.suffix for k in CANDIDATES.values())})")
    return kind.load(path)


def rule_baseline(frame: pd.DataFrame) -> np.ndarray:
    """What a teacher would do by hand: low grade within the cohort so far, or gone quiet."""
    inactive = frame["days_since_last_activity"].isna() | (frame["days_since_last_activity"] > INACTIVE_DAYS_FOR_RULE)
    low_grade = 1 - frame["grade_percentile_in_course"] / 100
    return np.clip(0.6 * low_grade + 0.4 * inactive.astype(float), 0, 1).to_numpy()
