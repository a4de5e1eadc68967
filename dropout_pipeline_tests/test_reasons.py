"""Reasons that are true (issue 22): every number a reason cites agrees with the feature it
names, as shown; a "never" phrase is said only where the course has that kind of content; a
learner at LOW is told what keeps them low, not given risk factors.

The small tests build each reported defect by hand; the property tests read every reason
stored for the demo world and for a realistic world (courses without videos or without
H5P) and recompute each from the features it was made from.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.modeling.scorers import Scorer
from dropout_pipeline.predictions.reasons import PROTECTIVE_PHRASINGS, PROTECTIVE_PREFIX, RISK_PHRASINGS, WHEN_NULL, top_reasons
from dropout_pipeline.predictions.score import RiskLevels, score_learners
from dropout_pipeline.simulator.runner import simulator_thread
from dropout_pipeline.simulator.server import SimulatorState
from dropout_pipeline.simulator.world import profile_settings
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.feature_tables import read_current_features
from dropout_pipeline_tests.conftest import TODAY, resources_for


def texts(reasons: list[dict]) -> list[str]:
    return [r["text"] for r in reasons]


# -- a missing value is a reason only where the course has that kind of content --------------

NEVER = [
    ("video_days_since_last_watch", "course_has_videos", "Has not watched any video"),
    ("h5p_days_since_last_finish", "course_has_h5p", "Has not finished any exercise"),
]


@pytest.mark.parametrize(("feature", "flag", "phrase"), NEVER)
def test_a_course_without_that_content_never_says_a_learner_has_not_used_it(feature, flag, phrase):
    """In a course without videos nobody has watched one: "Has not watched any video" is
    true of everyone and explains nothing, so it is never given."""
    course = pd.DataFrame({feature: [np.nan] * 6, flag: [0] * 6})
    assert top_reasons(course, [feature], np.ones((6, 1))) == [[]] * 6


@pytest.mark.parametrize(("feature", "flag", "phrase"), NEVER)
def test_a_course_with_that_content_still_says_a_learner_has_not_used_it(feature, flag, phrase):
    """Listed by the course, or used by a classmate (an uploaded file may lack the flag)."""
    listed = pd.DataFrame({feature: [np.nan] * 6, flag: [1] * 6})
    assert texts(top_reasons(listed, [feature], np.ones((6, 1)))[0]) == [phrase]
    used = pd.DataFrame({feature: [np.nan] * 5 + [3.0]})
    assert texts(top_reasons(used, [feature], np.ones((6, 1)))[0]) == [phrase]
    unused = pd.DataFrame({feature: [np.nan] * 6})
    assert top_reasons(unused, [feature], np.ones((6, 1))) == [[]] * 6


# -- rounding: the value and the median compared as the phrase shows them ---------------------

ROUNDED_TO_THE_MEDIAN = [
    # 99.6% shows as 100%, like the class median of 100%: "Has completed 100% ..., 75% have completed more"
    ("mooc_completion_rate", [0.996, 1.0, 1.0, 1.0, 0.4]),
    # 2.04 attempts shows as 2.0, like the class median: "Needs 2.0 attempts ..., 75% need fewer"
    ("h5p_avg_attempts", [2.04, 2.0, 2.0, 1.0, 3.0]),
    # 12.3 points below the average shows as 12, like the median gap
    ("grade_minus_course_mean", [-12.3, -12.0, -12.0, 20.0, -11.8]),
]


@pytest.mark.parametrize(("feature", "values"), ROUNDED_TO_THE_MEDIAN)
def test_a_value_shown_equal_to_the_class_median_is_not_cited_as_on_its_risky_side(feature, values):
    frame = pd.DataFrame({feature: values})
    assert top_reasons(frame, [feature], np.ones((len(values), 1)))[0] == []


def test_a_classmate_shown_with_the_same_value_is_not_counted_as_better_off():
    """The learner at 50.0% and a classmate at 50.4% both read "50%": three of four are
    better off as shown, not all four."""
    frame = pd.DataFrame({"mooc_completion_rate": [0.500, 0.504, 0.9, 0.9, 0.9]})
    assert texts(top_reasons(frame, ["mooc_completion_rate"], np.ones((5, 1)))[0]) == [
        "Has completed 50% of the course units, 75% of classmates have completed more"]


# -- the side a reason cites holds at least half of the classmates ----------------------------

def test_a_reason_never_cites_fewer_than_half_of_classmates_better_off():
    """Six never active, four last active 1, 2, 3 and 20 days ago: the one at 20 days is past
    the active learners' median, but only three of nine classmates were active more recently;
    "No activity for 20 days, 33% of classmates were active more recently" is no risk signal."""
    days = pd.DataFrame({"days_since_last_activity": [np.nan] * 6 + [1.0, 2.0, 3.0, 20.0]})
    reasons = top_reasons(days, ["days_since_last_activity"], np.ones((10, 1)))
    assert reasons[9] == []
    assert texts(reasons[0]) == ["Has never been active"]


# -- a learner at LOW is told what keeps them low ---------------------------------------------

class FixedScorer(Scorer):
    """A model whose probabilities and contributions are given: the reasons are under test, not a fit."""

    model_type, suffix, calibration = "fixed", ".fixed", None

    def __init__(self, features: list[str], probabilities: list[float], contributions: list[list[float]]):
        self.features, self.probabilities, self.by_feature = features, np.array(probabilities), np.array(contributions, dtype=float)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.probabilities

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        return self.by_feature


def six_learners() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": range(1, 7), "course_id": "course-v1:T+T1+2026_S2", "snapshot_date": date(2026, 11, 22),
        "mooc_grade_percentage": [90.0, 80.0, 40.0, 20.0, 10.0, 5.0],
        "mooc_completion_rate": [0.9, 0.8, 0.4, 0.2, 0.1, 0.05],
        "days_since_last_activity": [1.0, 30.0, 10.0, 20.0, 2.0, 40.0],
    })


FEATURES = ["mooc_grade_percentage", "days_since_last_activity"]
# Learner 2 is at LOW (5%) though the model found one thing against them: 30 days away.
PROBABILITIES = [0.001, 0.05, 0.5, 0.8, 0.9, 0.95]
CONTRIBUTIONS = [[-3.0, -0.5], [-2.0, 0.3], [0.1, -0.2], [1.0, 0.5], [2.0, -0.4], [2.0, 1.0]]


def test_a_low_learner_is_shown_what_keeps_them_low_not_risk_factors():
    model = FixedScorer(FEATURES, PROBABILITIES, CONTRIBUTIONS)
    scored = score_learners(six_learners(), model, model, RiskLevels())
    assert scored["risk_level"].tolist() == ["LOW", "LOW", "MEDIUM", "HIGH", "HIGH", "HIGH"]
    second = scored["reasons"].iloc[1]
    assert second == [{"feature": "mooc_grade_percentage", "kind": "protective", "contribution": -2.0, "value": 80.0, "classmates_worse_off": 80.0,
                       "text": "In their favour: grade so far is 80%, 80% of classmates have a lower grade"}]
    assert scored["dropout_reasons"].iloc[1] == second  # the dropout score's own level decides, here LOW too
    assert texts(scored["reasons"].iloc[0]) == [
        "In their favour: grade so far is 90%, 100% of classmates have a lower grade",
        "In their favour: last active in the course 1 day ago, 100% of classmates have been away longer"]


def test_a_learner_at_risk_is_given_risk_factors_only():
    model = FixedScorer(FEATURES, PROBABILITIES, CONTRIBUTIONS)
    scored = score_learners(six_learners(), model, model, RiskLevels())
    last = scored["reasons"].iloc[5]
    assert [r["kind"] for r in last] == ["risk", "risk"]
    assert texts(last) == ["Grade so far is 5%, 100% of classmates have a higher grade",
                           "No activity in the course for 40 days, 100% of classmates were active more recently"]
    assert all(r["kind"] == "risk" for reasons in scored["reasons"].iloc[2:] for r in reasons)


def test_a_protective_factor_is_never_said_of_a_learner_on_the_risky_side():
    """A LOW learner the model credits for a value on the risky side gets no factor for it."""
    model = FixedScorer(FEATURES, [0.01] * 6, [[-1.0, -1.0]] * 6)
    scored = score_learners(six_learners(), model, None, RiskLevels())
    assert scored["reasons"].iloc[5] == []  # 5% grade, 40 days away: nothing in their favour
    assert scored["dropout_reasons"].iloc[5] is None


# -- the property: no stored reason contradicts the features it was made from ----------------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DECIMALS = re.compile(r"\{value:\.(\d)f\}")


def as_shown(value: float, phrasing) -> float:
    """A value as its phrase prints it (Python's own formatting, not the code under test's rounding)."""
    found = DECIMALS.search(phrasing.template)
    return float(f"{value * phrasing.scale:.{int(found.group(1)) if found else 0}f}") + 0.0


def on_side(shown: float, of: float, phrasing) -> bool:
    """Strictly on the phrase's side of `of`, both as shown (a negative scale turns the side over)."""
    low = (phrasing.side == "low") == (phrasing.scale > 0)
    return shown < of if low else shown > of


def contradiction(given: dict, column: pd.Series, user_id: int, features: pd.DataFrame, at_low: bool) -> str | None:
    """What one stored reason says that the course's features contradict, or None."""
    kind, text = given.get("kind", "risk"), given["text"]
    if (kind == "protective") != at_low:
        return "a LOW learner given risk factors" if at_low else "protective factors for a learner at risk"
    value = column.loc[user_id]
    if pd.isna(value):
        absence = WHEN_NULL[given["feature"]]
        if kind != "risk" or text != absence.text or given["value"] is not None:
            return "a missing value phrased otherwise than by its 'never' phrase"
        has_content = absence.content is None or features[absence.content].fillna(0).gt(0).any() or column.notna().any()
        return None if has_content else "a 'never' phrase in a course without that content"
    phrasing = (PROTECTIVE_PHRASINGS if kind == "protective" else RISK_PHRASINGS)[given["feature"]]
    if kind == "protective":
        if not text.startswith(PROTECTIVE_PREFIX):
            return "a protective factor that does not say so"
        text = text.removeprefix(PROTECTIVE_PREFIX)
    numbers = [float(n) for n in NUMBER.findall(text)]
    shown = as_shown(value, phrasing)
    if "{value" in phrasing.template and numbers[0] != shown:
        return f"the number shown is not the value: {numbers[0]} for {value}"
    median = as_shown(float(column.dropna().median()), phrasing)
    if not on_side(shown, median, phrasing):
        return f"not past the class median as shown: {shown} against {median}"
    if phrasing.boundary is not None and not on_side(shown, as_shown(phrasing.boundary, phrasing), phrasing):
        return f"not past the phrase's boundary: {shown}"
    others = column.drop(index=user_id)
    on_other_side = sum(on_side(shown, as_shown(v, phrasing), phrasing) for v in others.dropna())
    if numbers[-1] < 50:
        return "cites a side where fewer than half of the classmates are"
    if abs(numbers[-1] - 100 * on_other_side / len(others)) > 0.5:
        return f"the share cited is not the share: {numbers[-1]}% for {100 * on_other_side / len(others):.1f}%"
    return None


def check_course(connection: sa.Connection, course_id: str, levels: RiskLevels) -> tuple[Counter, list]:
    """Every reason stored for the course's latest predictions, both scores: their kinds and
    what contradicts them."""
    features = read_current_features(connection, course_id).set_index("user_id")
    latest = pd.read_sql(sa.select(schema.predictions).where(schema.predictions.c.course_id == course_id, schema.predictions.c.is_latest), connection)
    assert len(latest) == len(features) > 0
    kinds, contradictions = Counter(), []
    for row in latest.itertuples():
        for column, score in (("reasons", row.fail_risk_score), ("dropout_reasons", row.dropout_risk_score)):
            at_low = levels.of(np.array([score]))[0] == "LOW"
            for given in getattr(row, column) or []:
                numeric = pd.to_numeric(features[given["feature"]], errors="coerce")
                kinds[given.get("kind", "risk")] += 1
                if problem := contradiction(given, numeric, row.user_id, features, at_low):
                    contradictions.append((problem, score, given["text"]))
    return kinds, contradictions


def predict_running_courses(simulator, world: dict, instance, courses: list[str]) -> Counter:
    defs = build_definitions(resources_for(simulator, world["url"], world["models"]))
    instance.add_dynamic_partitions("courses", courses)
    for course_id in courses:
        assert defs.resolve_job_def("course_refresh").execute_in_process(instance=instance, partition_key=course_id).success
    kinds, contradictions = Counter(), []
    with engine_for(world["url"]).connect() as connection:
        for course_id in courses:
            counted, found = check_course(connection, course_id, RiskLevels())
            kinds, contradictions = kinds + counted, contradictions + found
    by_problem = Counter(problem.split(":")[0] for problem, *_ in contradictions)
    examples = "\n".join(f"  {problem} (score {score:.3f}): {text}" for problem, score, text in contradictions[:12])
    assert contradictions == [], f"{len(contradictions)} of {sum(kinds.values())} reasons contradict what they cite: {dict(by_problem)}\n{examples}"
    return kinds


def test_no_stored_reason_of_the_demo_world_contradicts_what_it_cites(simulator, trained_copy, instance):
    kinds = predict_running_courses(simulator, trained_copy, instance, trained_copy["running"])
    assert kinds["risk"] > 0 and kinds["protective"] > 0, kinds


# A realistic platform, small: three running courses, one without videos and one without H5P.
REALISTIC = profile_settings("realistic", seed=1, today=TODAY, running_courses=3, min_learners=40, max_learners=90)


def test_no_stored_reason_of_a_realistic_world_contradicts_what_it_cites(trained_copy, instance):
    """The demo world's models score a realistic platform's running courses (their ids differ
    from the demo's): courses without videos or H5P, heavy-tailed engagement."""
    state = SimulatorState(world=REALISTIC)
    running = [c for c in state.listed_courses() if c.end >= TODAY]
    assert {(c.has_videos, c.has_h5p) for c in running} >= {(False, True), (True, False)}
    with simulator_thread(state) as realistic:
        defs = build_definitions(resources_for(realistic, trained_copy["url"], trained_copy["models"]))
        assert defs.resolve_job_def("discover_courses").execute_in_process(instance=instance).success
        kinds = predict_running_courses(realistic, trained_copy, instance, [c.course_id for c in running])
    assert kinds["risk"] > 0 and kinds["protective"] > 0, kinds
