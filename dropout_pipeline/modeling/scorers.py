"""What learns and scores: the candidate models (CatBoost, logistic regression, their
blend, and a class-weighted random forest) and the rule a teacher would use by hand,
which all must beat.

Every candidate learns from the dictionary's features and their ranks within the class
on the same date (modeling.cohort), and explains itself in the dictionary's features.
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
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from dropout_pipeline.features.dictionary import CATEGORICAL_FEATURES, FEATURE_NAMES
from dropout_pipeline.modeling.calibration import PlattCalibration, log_odds
from dropout_pipeline.modeling.cohort import model_inputs, source_feature, with_cohort_ranks
from dropout_pipeline.modeling.split import stable_rank

TARGETS = {"fail": "fail", "dropout": "is_dropout"}
SEED = 20261122
INACTIVE_DAYS_FOR_RULE = 14
DEFAULT_ITERATIONS = 300  # CatBoost trees when no validation fold can be spared
MAX_ITERATIONS, MIN_ITERATIONS, EARLY_STOPPING_ROUNDS = 1000, 50, 60
LOGISTIC_C = 0.5  # L2 strength: mild, the features being scaled
# The forest: enough trees for stable ranks, leaves of 50 rows so its probabilities are not
# the 0/1 votes of memorised learners, and a fifth of the rows per tree: on the demo's 105,000
# rows that fits in 4 s instead of 14 s (150 trees, leaves of 20, half the rows) for 0.002
# less held-out ROC AUC, and the nightly retrain fits each candidate five times per target.
FOREST_TREES, FOREST_MIN_LEAF, FOREST_ROW_SHARE = 100, 50, 0.2
FOREST_PROBABILITY_BOUND = 1e-4


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
    are dataclasses with `features` (the dictionary's, which reasons name) and
    `calibration` fields; a model's own columns (`inputs`) are the features and their
    cohort ranks."""

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


def _per_feature(by_input: np.ndarray, inputs: list[str], features: list[str]) -> np.ndarray:
    """Rows x inputs contributions summed into rows x features (a rank counts for the feature it ranks)."""
    lookup = {name: i for i, name in enumerate(features)}
    out = np.zeros((by_input.shape[0], len(features)))
    for column, name in enumerate(inputs):
        out[:, lookup[source_feature(name)]] += by_input[:, column]
    return out


def _importance_by_feature(by_input: np.ndarray, inputs: list[str], features: list[str], top: int) -> dict[str, float]:
    totals = _per_feature(np.asarray(by_input, dtype=float).reshape(1, -1), inputs, features)[0]
    pairs = sorted(zip(features, totals, strict=True), key=lambda pair: -pair[1])[:top]
    return {name: round(float(value), 3) for name, value in pairs}


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

    @property
    def inputs(self) -> list[str]:
        return list(self.model.feature_names_)

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
        inputs = model_inputs(features)
        pool = lambda rows: Pool(with_cohort_ranks(rows, inputs), target_values(rows, target), cat_features=list(CATEGORICAL_FEATURES))  # noqa: E731
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
        categorical = [f for f in self.inputs if f in CATEGORICAL_FEATURES]
        return Pool(with_cohort_ranks(frame, self.inputs), cat_features=categorical)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(self.pool(frame))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-row SHAP values (log-odds), one column per feature (its rank's included), bias column dropped."""
        shap = self.model.get_feature_importance(self.pool(frame), type="ShapValues")[:, :-1]
        return _per_feature(shap, self.inputs, self.features)

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        return _importance_by_feature(self.model.get_feature_importance(), self.inputs, self.features, top)

    def _save_model(self, path: Path) -> None:
        self.model.save_model(str(path))

    @classmethod
    def load(cls, path: Path) -> CatBoostScorer:
        """A saved model; one saved before calibration existed loads without one (raw scores)."""
        model = CatBoostClassifier()
        model.load_model(str(path))
        features, calibration = _sidecars(path)
        return cls(model, features, calibration, iterations=model.tree_count_)


def _tabular_encoder(inputs: list[str], scaled: bool) -> ColumnTransformer:
    """Numbers with an indicator for each missing value (scaled for a linear model), and
    one-hot categories: the columns the scikit-learn candidates see."""
    numeric = [f for f in inputs if f not in CATEGORICAL_FEATURES]
    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(imputer, StandardScaler()) if scaled else imputer, numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ]
    )


def _encoded_column_inputs(encoder: ColumnTransformer, inputs: list[str]) -> list[str]:
    """For each column an encoder gives, the input it comes from (a value or its missing
    indicator: the input; a one-hot column: its category's feature)."""
    longest_first = sorted(inputs, key=len, reverse=True)  # the longest name a one-hot column starts with

    def source(column: str) -> str:
        part, _, rest = column.partition("__")
        if part == "numeric":
            return rest.removeprefix("missingindicator_")
        return next(name for name in longest_first if rest.startswith(f"{name}_"))

    return [source(column) for column in encoder.get_feature_names_out()]


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

    @property
    def inputs(self) -> list[str]:
        return list(self.model[0].feature_names_in_)

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str) -> LogisticScorer:
        train = ordered(train)
        features = list(FEATURE_NAMES)
        inputs = model_inputs(features)
        model = make_pipeline(_tabular_encoder(inputs, scaled=True), LogisticRegression(C=LOGISTIC_C, max_iter=5000))
        rows = with_cohort_ranks(train, inputs)
        model.fit(rows, target_values(train, target))
        return cls(model, _dense(model[0].transform(rows)).mean(axis=0), features)

    def _transformed(self, frame: pd.DataFrame) -> np.ndarray:
        return _dense(self.model[0].transform(with_cohort_ranks(frame, self.inputs)))

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(with_cohort_ranks(frame, self.inputs))[:, 1]

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Exact log-odds contributions of a linear model: coefficient x (value - its training
        mean), summed over the columns each feature became (scaled value, missing
        indicator, one-hot categories, its cohort rank)."""
        centred = (self._transformed(frame) - self.column_means) * self.model[-1].coef_[0]
        return _per_feature(centred, _encoded_column_inputs(self.model[0], self.inputs), self.features)

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        return _importance_by_feature(np.abs(self.model[-1].coef_[0]), _encoded_column_inputs(self.model[0], self.inputs), self.features, top)

    def _save_model(self, path: Path) -> None:
        joblib.dump({"model": self.model, "column_means": self.column_means}, path)

    @classmethod
    def load(cls, path: Path) -> LogisticScorer:
        """Our own file from the models directory (joblib unpickles: never load one from elsewhere)."""
        saved = joblib.load(path)
        features, calibration = _sidecars(path)
        return cls(saved["model"], saved["column_means"], features, calibration)


@dataclass
class RandomForestScorer(Scorer):
    """A random forest whose classes are rebalanced by weight (`balanced_subsample`: each
    tree weighs its own bootstrap's outcomes equally), so the rarer outcome shapes the
    splits as much as the common one. Weights rather than SMOTE: synthetic learners made
    between two real ones of different courses would mix cohorts the ranks describe, and
    the weights need no extra library. Its raw scores are pushed towards 0.5 by the
    rebalancing; the Platt calibration every candidate gets maps them back."""

    model: Pipeline
    features: list[str]
    calibration: PlattCalibration | None = None
    model_type = "RandomForestClassifier"
    suffix = ".forest"

    @property
    def inputs(self) -> list[str]:
        return list(self.model[0].feature_names_in_)

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str) -> RandomForestScorer:
        train = ordered(train)
        features = list(FEATURE_NAMES)
        inputs = model_inputs(features)
        forest = RandomForestClassifier(
            n_estimators=FOREST_TREES, min_samples_leaf=FOREST_MIN_LEAF, max_samples=FOREST_ROW_SHARE, max_features="sqrt",
            class_weight="balanced_subsample", random_state=SEED, n_jobs=2,
        )
        model = make_pipeline(_tabular_encoder(inputs, scaled=False), forest)
        model.fit(with_cohort_ranks(train, inputs), target_values(train, target))
        forest.set_params(n_jobs=1)  # trees are grown on both cores; their votes are summed in one order, or the same data could score differently
        return cls(model, features)

    def _encoded(self, frame: pd.DataFrame) -> np.ndarray:
        return _dense(self.model[0].transform(with_cohort_ranks(frame, self.inputs)))

    def _bounded(self, probability: np.ndarray) -> np.ndarray:
        """Kept off 0 and 1: a learner every tree puts in a pure leaf still has log-odds."""
        return np.clip(probability, FOREST_PROBABILITY_BOUND, 1 - FOREST_PROBABILITY_BOUND)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self._bounded(self.model.predict_proba(with_cohort_ranks(frame, self.inputs))[:, 1])

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Each split's change of the risk credited to the feature split on, along every
        row's path, averaged over the trees (Saabas' attribution: it sums exactly to the
        forest's probability minus its roots' mean), then rescaled per row into log-odds,
        the unit every candidate's reasons share. Computed from the trees' own structure
        (shap's TreeExplainer would bring numba and LLVM along for the same purpose)."""
        encoded = self._encoded(frame)
        forest = self.model[-1]
        by_column = np.zeros(encoded.shape)
        for tree in forest.estimators_:
            by_column += (sparse.csr_matrix(tree.decision_path(encoded)) @ _split_gains(tree.tree_, encoded.shape[1])).toarray()
        by_column /= len(forest.estimators_)
        base = float(np.mean([_node_risk(tree.tree_)[0] for tree in forest.estimators_]))
        change = by_column.sum(axis=1)
        probability = self._bounded(base + change)
        slope = 1 / (probability * (1 - probability))  # d log-odds / d p, for a row the forest leaves at its base rate
        to_log_odds = np.divide(log_odds(probability) - log_odds(base), change, out=slope, where=np.abs(change) > 1e-9)
        return _per_feature(by_column * to_log_odds[:, None], _encoded_column_inputs(self.model[0], self.inputs), self.features)

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        return _importance_by_feature(self.model[-1].feature_importances_, _encoded_column_inputs(self.model[0], self.inputs), self.features, top)

    def _save_model(self, path: Path) -> None:
        joblib.dump({"model": self.model}, path)

    @classmethod
    def load(cls, path: Path) -> RandomForestScorer:
        """Our own file from the models directory (joblib unpickles: never load one from elsewhere)."""
        saved = joblib.load(path)
        features, calibration = _sidecars(path)
        return cls(saved["model"], features, calibration)


def _node_risk(tree) -> np.ndarray:
    """Each node's share of the at-risk outcome (weighted, as the tree was grown)."""
    return tree.value[:, 0, 1] / tree.value[:, 0, :].sum(axis=1)


def _split_gains(tree, columns: int) -> sparse.csr_matrix:
    """Nodes x columns: what reaching a node changed the risk by, under the column its
    parent split on (the root: nothing); a row's path times this is its attribution."""
    risk = _node_risk(tree)
    parent = np.full(tree.node_count, -1)
    for children in (tree.children_left, tree.children_right):
        inner = children >= 0
        parent[children[inner]] = np.nonzero(inner)[0]
    reached = np.nonzero(parent >= 0)[0]
    gains = risk[reached] - risk[parent[reached]]
    return sparse.csr_matrix((gains, (reached, tree.feature[parent[reached]])), shape=(tree.node_count, columns))


@dataclass
class BlendScorer(Scorer):
    """CatBoost and the logistic regression together: the mean of their log-odds. The two
    err differently (trees on interactions, the line on smooth trends), so where data is
    scarce their mean is steadier than either; the weights are fixed, not learned, so
    the blend needs no data of its own. Its reasons are the mean of the two models' exact
    contributions, which sum to its own log-odds."""

    members: list[Scorer]
    features: list[str]
    calibration: PlattCalibration | None = None
    model_type = "CatBoost+LogisticRegression"
    suffix = ".blend"
    member_candidates = ("catboost", "logistic_regression")  # CANDIDATES' names, in the order of `members`

    @classmethod
    def of(cls, members: list[Scorer]) -> BlendScorer:
        """The blend of fitted members (their own calibrations set aside: the blend has its own)."""
        return cls([member.calibrated(None) for member in members], list(members[0].features))

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str, iterations: int | None = None) -> BlendScorer:
        return cls.of([CatBoostScorer.fit(train, target, iterations), LogisticScorer.fit(train, target)])

    @staticmethod
    def combine(member_probabilities: list[np.ndarray]) -> np.ndarray:
        """The blend's raw probability from its members' raw probabilities."""
        return 1 / (1 + np.exp(-np.mean([log_odds(p) for p in member_probabilities], axis=0)))

    def refit_settings(self) -> dict:
        return {key: value for member in self.members for key, value in member.refit_settings().items()}

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.combine([member.raw_proba(frame) for member in self.members])

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return np.mean([member.contributions(frame) for member in self.members], axis=0)

    def feature_importance(self, top: int = 15) -> dict[str, float]:
        """The mean of the members' importances, each as shares of its total (their scales differ)."""
        shares = []
        for member in self.members:
            importance = member.feature_importance(top=len(self.features))
            total = sum(importance.values()) or 1.0
            shares.append({name: value / total for name, value in importance.items()})
        mean = {name: 100 * float(np.mean([share.get(name, 0.0) for share in shares])) for name in self.features}
        return {name: round(value, 3) for name, value in sorted(mean.items(), key=lambda pair: -pair[1])[:top]}

    @staticmethod
    def _member_path(path: Path, member: Scorer) -> Path:
        """`vN.blend`'s members: `vN-cbm.cbm`, `vN-joblib.joblib` (each with its own sidecars)."""
        return path.with_name(f"{path.stem}-{member.suffix.lstrip('.')}{member.suffix}")

    def _save_model(self, path: Path) -> None:
        """A list of the members' files beside it (each saved as its own kind)."""
        for member in self.members:
            member.save(self._member_path(path, member))
        path.write_text(json.dumps({"members": [self._member_path(path, member).name for member in self.members]}))

    @classmethod
    def load(cls, path: Path) -> BlendScorer:
        members = [load_scorer(path.with_name(name)) for name in json.loads(path.read_text())["members"]]
        features, calibration = _sidecars(path)
        return cls(members, features, calibration)


CANDIDATES: dict[str, type[Scorer]] = {
    "catboost": CatBoostScorer, "logistic_regression": LogisticScorer, "blend": BlendScorer, "random_forest": RandomForestScorer,
}


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
