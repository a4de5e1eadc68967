"""Next courses for a learner: a hybrid of content similarity, collaborative filtering on
enrolments and outcomes, rules and popularity; and its evaluation on a time split.

Everything is reasoned about per subject (ORG+CODE, analytics.course_keys): each semester's
run of a course is a new course key, but a learner who took last year's PY101 has taken
PY101, and last year's enrolments in it are this year's run's popularity. What is listed
is an open run of a subject.

The parts, each scored for every candidate and rescaled to 0-1 over the candidates (min to
max, all 0 when they are all equal: a part that cannot tell them apart adds nothing):
- content: cosine similarity between the TF-IDF vector of a subject's text (its display
  names, organisation, code, and the titles of its H5P contents and videos the raw tables
  hold) and the learner's profile, the mean of their subjects' vectors weighted by how
  they went (PASSED_WEIGHT for a pass);
- collaborative: a truncated SVD (scikit-learn) of the learner x subject matrix of
  interactions (1 for an enrolment, PASSED_WEIGHT when the learner passed it, the outcome
  known from `training_data`), the learner's row folded in and projected back;
- rules: 1 when the subject's organisation is one the learner has studied with;
- popularity: enrolments in the subject's runs.
The hybrid score is their weighted sum with the legacy system's weights (WEIGHTS).

Hard rules, for every path (recommendations and their evaluation): never a subject the
learner has taken (whatever the outcome), never a course not open for enrolment
(`is_open_for_enrolment`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from dropout_pipeline.analytics.course_keys import course_code, course_subject
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.lifecycle.plan import CourseState, state_of
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import read_frame

WEIGHTS: Final = {"collaborative": 0.40, "content": 0.35, "rules": 0.15, "popularity": 0.10}
"""The legacy system's hybrid weights (CF 0.40, content 0.35, rules 0.15, popularity 0.10), kept so the two can be compared."""
PASSED_WEIGHT: Final = 2.0
"""A passed course counts twice an enrolment that did not end in a pass: what went well is the better guide."""
SVD_RANK: Final = 8
TOP_K: Final = 10
DEFAULT_LIMIT: Final = 5
MIN_LEARNERS_FOR_A_VERDICT: Final = 30
"""Fewer learners evaluated than this and the comparison says nothing; the report says so."""
BOOTSTRAP_SAMPLES: Final = 2000


# --- What is known: courses, enrolments with their outcome, and subjects' text ----------------


@dataclass(frozen=True)
class Catalogue:
    courses: pd.DataFrame  # course_id, subject, display_name, org, start, end
    enrolments: pd.DataFrame  # user_id, course_id, subject, passed (1.0, 0.0, or NaN: not known yet)
    titles: pd.DataFrame  # course_id, title: the contents' titles the raw tables hold


def read_catalogue(connection: sa.Connection) -> Catalogue:
    c, e, t = schema.courses, schema.enrollments, schema.training_data
    courses = read_frame(connection, sa.select(c.c.course_id, c.c.display_name, c.c.org, c.c.start, c.c.end))
    enrolled = read_frame(connection, sa.select(e.c.user_id, e.c.course_id))
    outcomes = read_frame(connection, sa.select(t.c.user_id, t.c.course_id, t.c.is_passed).distinct())
    outcomes = outcomes.assign(passed=outcomes["is_passed"].astype(float)).groupby(["user_id", "course_id"], as_index=False)["passed"].max()
    enrolments = enrolled.merge(outcomes, on=["user_id", "course_id"], how="outer")
    enrolments = enrolments[enrolments["course_id"].isin(courses["course_id"])]
    titles = pd.concat([
        read_frame(connection, sa.select(table.c.course_id, table.c.content_title.label("title")).where(table.c.content_title.is_not(None)).distinct())
        for table in (schema.h5p_scores, schema.video_progress)
    ], ignore_index=True)
    return Catalogue(courses.assign(subject=courses["course_id"].map(course_subject)),
                     enrolments.assign(subject=enrolments["course_id"].map(course_subject)), titles)


def is_open_for_enrolment(course: Mapping, today: date) -> bool:
    """Open: not ended by `today`. An upcoming course is open (platforms enrol learners before
    the start: the simulator up to two weeks ahead); a finished one is not; a self-paced one
    (no end) always is."""
    end = None if pd.isna(course["end"]) else course["end"]
    return state_of(CourseCalendar(course["course_id"], course["start"], end), today) is not CourseState.FINISHED


def subject_documents(catalogue: Catalogue) -> pd.Series:
    """Each subject's text for TF-IDF: display names, organisation, code and contents' titles."""
    titles = catalogue.titles.assign(subject=catalogue.titles["course_id"].map(course_subject)).groupby("subject")["title"].agg(lambda t: " ".join(sorted(set(t))))
    described = catalogue.courses.groupby("subject").agg(
        names=("display_name", lambda n: " ".join(sorted(set(n)))), org=("org", "first"), course_id=("course_id", "first"),
    )
    return described["names"] + " " + described["org"] + " " + described["course_id"].map(course_code) + " " + titles.reindex(described.index).fillna("")


# --- Fitting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FittedRecommender:
    subjects: pd.Index
    content: np.ndarray  # subjects x terms, rows of unit length
    components: np.ndarray | None  # SVD rank x subjects; None: too little data to factorise
    popularity: pd.Series  # subject -> enrolments
    orgs: pd.Series  # subject -> organisation


def interaction_strength(enrolments: pd.DataFrame) -> np.ndarray:
    return np.where(enrolments["passed"] == 1.0, PASSED_WEIGHT, 1.0)


def fit(catalogue: Catalogue, enrolments: pd.DataFrame) -> FittedRecommender:
    """The recommender learned from `enrolments` (of the catalogue's courses) only."""
    documents = subject_documents(catalogue)
    subjects = documents.index
    content = TfidfVectorizer(sublinear_tf=True).fit_transform(documents.to_numpy()).toarray()
    users = pd.Index(enrolments["user_id"].unique())
    matrix = sparse.csr_matrix(
        (interaction_strength(enrolments), (users.get_indexer(enrolments["user_id"]), subjects.get_indexer(enrolments["subject"]))),
        shape=(len(users), len(subjects)),
    )
    rank = min(SVD_RANK, len(subjects) - 1, len(users) - 1)
    components = TruncatedSVD(n_components=rank, random_state=0).fit(matrix).components_ if rank >= 1 and matrix.nnz else None
    popularity = enrolments.groupby("subject").size().reindex(subjects, fill_value=0)
    orgs = catalogue.courses.groupby("subject")["org"].first().reindex(subjects)
    return FittedRecommender(subjects, content, components, popularity, orgs)


def _rescaled(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min() if len(values) else 0.0
    return (values - values.min()) / spread if spread > 1e-12 else np.zeros(len(values))


def score_candidates(fitted: FittedRecommender, history: pd.DataFrame, candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidates (one course per subject) with each part and the hybrid score, best first.
    `history`: the learner's enrolments (subject, passed)."""
    strength = pd.Series(interaction_strength(history), index=history["subject"].to_numpy()).groupby(level=0).max()
    taken = fitted.subjects.get_indexer(strength.index)
    strength, taken = strength[taken >= 0], taken[taken >= 0]
    rows = fitted.subjects.get_indexer(candidates["subject"])
    profile = np.zeros(len(fitted.subjects))
    profile[taken] = strength.to_numpy()
    parts = {
        "content": fitted.content[rows] @ (fitted.content.T @ profile) / max(profile.sum(), 1.0) if len(taken) else np.zeros(len(rows)),
        "collaborative": (profile @ fitted.components.T @ fitted.components)[rows] if fitted.components is not None and len(taken) else np.zeros(len(rows)),
        "rules": candidates["org"].isin(set(fitted.orgs.iloc[taken])).to_numpy(dtype=float),
        "popularity": fitted.popularity.iloc[rows].to_numpy(dtype=float),
    }
    scored = candidates.assign(**{name: _rescaled(np.asarray(values, dtype=float)) for name, values in parts.items()})
    scored["score"] = sum(weight * scored[name] for name, weight in WEIGHTS.items())
    return scored.sort_values(["score", "popularity", "course_id"], ascending=[False, False, True])


def candidate_courses(courses: pd.DataFrame, taken_subjects: set[str], today: date, visible: Callable[[dict], bool] | None = None) -> pd.DataFrame:
    """The hard rules: open courses (the earliest run of a subject), of subjects not taken, that the asker may see."""
    rows = [row for row in courses.sort_values(["start", "course_id"]).to_dict("records")
            if row["subject"] not in taken_subjects and is_open_for_enrolment(row, today) and (visible is None or visible(row))]
    return pd.DataFrame(rows, columns=courses.columns).drop_duplicates("subject")


@dataclass(frozen=True)
class Recommender:
    catalogue: Catalogue
    fitted: FittedRecommender


def fitted_on_everything(connection: sa.Connection) -> Recommender:
    """The recommender learned from every enrolment known: what the API and the pages serve."""
    catalogue = read_catalogue(connection)
    return Recommender(catalogue, fit(catalogue, catalogue.enrolments))


def recommend(
    recommender: Recommender, user_id: int, today: date, limit: int = DEFAULT_LIMIT, visible: Callable[[dict], bool] | None = None,
    enrolled_now: Iterable[str] = (),
) -> list[dict]:
    """The learner's next courses, best first, each with its parts. `enrolled_now`: the
    learner's courses as the database says at this moment, which a recommender fitted
    minutes ago may not know yet; their subjects are never recommended either."""
    enrolments = recommender.catalogue.enrolments
    history = enrolments[enrolments["user_id"] == user_id]
    taken = set(history["subject"]) | {course_subject(course_id) for course_id in enrolled_now}
    candidates = candidate_courses(recommender.catalogue.courses, taken, today, visible)
    if candidates.empty:
        return []
    scored = score_candidates(recommender.fitted, history, candidates).head(limit)
    return [
        {"course_id": row["course_id"], "display_name": row["display_name"], "org": row["org"], "start": row["start"].to_pydatetime(),
         "end": None if pd.isna(row["end"]) else row["end"].to_pydatetime(),
         "score": round(float(row["score"]), 4), "parts": {name: round(float(row[name]), 4) for name in WEIGHTS}}
        for row in scored.to_dict("records")
    ]


# --- Evaluation on a time split ------------------------------------------------------------------


def ndcg_at(ranked: list[str], relevant: set[str], k: int) -> float:
    gains = sum(1 / np.log2(rank + 2) for rank, subject in enumerate(ranked[:k]) if subject in relevant)
    ideal = sum(1 / np.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return float(gains / ideal) if ideal else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def with_semesters(courses: pd.DataFrame) -> pd.DataFrame:
    """The courses with their semester (the course key's run, or the half-year of the start)."""
    return courses.assign(semester=[CourseCalendar(r.course_id, r.start, r.end).semester for r in courses.itertuples()])


def semester_openings(courses: pd.DataFrame) -> list[tuple[str, dict]]:
    """Each semester with its first course (the split falls on its start), in time order."""
    first = with_semesters(courses).sort_values(["start", "course_id"]).drop_duplicates("semester")
    return [(row["semester"], row) for row in first.to_dict("records")]


def outcomes_known_at(enrolments: pd.DataFrame, courses: pd.DataFrame, cutoff) -> pd.DataFrame:
    """The enrolments as they stood on `cutoff`: the outcome of a course not over by then (or
    with no end) was not known yet, so it is unknown (NaN) to a model fitted on that day."""
    ended = set(courses.loc[courses["end"] < cutoff, "course_id"])
    return enrolments.assign(passed=enrolments["passed"].where(enrolments["course_id"].isin(ended)))


def evaluate_split(catalogue: Catalogue, semester: str, opening: dict, k: int = TOP_K) -> dict:
    """Fit on the enrolments of courses started before `cutoff`; for every learner who had one and
    enrolled in a new subject in `semester`, rank the courses open on the cutoff day among
    those listed by then (started before it or in this semester) and score the ranking
    against the subjects they did enrol in, beside a ranking by popularity alone. `opening`:
    the semester's first course; the split is its start."""
    courses, cutoff = with_semesters(catalogue.courses), opening["start"]
    listed = courses[(courses["start"] < cutoff) | (courses["semester"] == semester)].drop(columns="semester")
    earlier = outcomes_known_at(catalogue.enrolments[catalogue.enrolments["course_id"].isin(listed.loc[listed["start"] < cutoff, "course_id"])],
                                listed, cutoff)
    later = catalogue.enrolments[catalogue.enrolments["course_id"].isin(courses.loc[courses["semester"] == semester, "course_id"])]
    today = CourseCalendar(opening["course_id"], opening["start"], opening["end"]).start_date
    split = {"semester": semester, "cutoff": today.isoformat(), "train_enrolments": len(earlier), "test_enrolments": len(later), "learners": []}
    if earlier.empty:
        return split
    fitted = fit(Catalogue(listed, earlier, catalogue.titles), earlier)
    histories = dict(tuple(earlier.groupby("user_id")))
    for user_id, enrolled in later.groupby("user_id"):
        history = histories.get(user_id)
        if history is None:
            continue
        candidates = candidate_courses(listed, set(history["subject"]), today)
        relevant = set(enrolled["subject"]) & set(candidates["subject"])
        if not relevant:
            continue
        hybrid = score_candidates(fitted, history, candidates)["subject"].tolist()
        popular = candidates.assign(p=fitted.popularity.reindex(candidates["subject"]).to_numpy()).sort_values(["p", "course_id"], ascending=[False, True])["subject"].tolist()
        split["learners"].append({
            "candidates": len(candidates),
            "hybrid": (ndcg_at(hybrid, relevant, k), recall_at(hybrid, relevant, k)),
            "popularity": (ndcg_at(popular, relevant, k), recall_at(popular, relevant, k)),
        })
    return split


def _mean(learners: list[dict], ranker: str, metric: int) -> float | None:
    return round(float(np.mean([row[ranker][metric] for row in learners])), 4) if learners else None


def _bootstrap_difference(learners: list[dict], metric: int) -> list[float] | None:
    """A 95% interval of the mean difference hybrid - popularity, learners resampled (paired)."""
    if len(learners) < 2:
        return None
    differences = np.array([row["hybrid"][metric] - row["popularity"][metric] for row in learners])
    draws = np.random.default_rng(0).choice(differences, size=(BOOTSTRAP_SAMPLES, len(differences))).mean(axis=1)
    return [round(float(q), 4) for q in np.quantile(draws, [0.025, 0.975])]


def _verdict(learners: list[dict], multi_course: int, enrolled: int, k: int) -> str:
    n = len(learners)
    taken = f"{multi_course} of {enrolled} learners ever took more than one subject"
    if n == 0:
        return f"not evaluated: no learner enrolled in a new subject in a later semester after a course in an earlier one ({taken}); no figure is given"
    said = [f"{n} learners evaluated ({taken})"]
    if n < MIN_LEARNERS_FOR_A_VERDICT:
        said.append(f"fewer than {MIN_LEARNERS_FOR_A_VERDICT}: too few for the comparison to mean anything")
    most = max(row["candidates"] for row in learners)
    if most <= k:
        said.append(f"at most {most} open courses were there to rank, so every one is in the top {k}: recall@{k} is 1 by construction "
                    f"for both rankers, and NDCG@{k} only says which of {most} courses came first")
    interval = _bootstrap_difference(learners, 0)
    if interval and n >= MIN_LEARNERS_FOR_A_VERDICT:
        if interval[0] > 0:
            said.append(f"the hybrid ranks better than popularity (NDCG@{k} difference 95% interval {interval})")
        elif interval[1] < 0:
            said.append(f"the hybrid ranks worse than popularity (NDCG@{k} difference 95% interval {interval})")
        else:
            said.append(f"the hybrid adds nothing measurable over popularity (NDCG@{k} difference 95% interval {interval} includes 0)")
    return "; ".join(said)


def recommender_holdout_report(engine: sa.Engine, k: int = TOP_K) -> dict:
    """NDCG@k and recall@k of the hybrid beside popularity alone, on every semester split (fit on
    earlier semesters, test on the next one's enrolments), pooled over learners, with how
    many learners each figure rests on and what they may be trusted for."""
    with engine.connect() as connection:
        catalogue = read_catalogue(connection)
    splits = [evaluate_split(catalogue, semester, opening, k) for semester, opening in semester_openings(catalogue.courses)[1:]]
    learners = [row for split in splits for row in split["learners"]]
    per_learner = catalogue.enrolments.groupby("user_id")["subject"].nunique()
    multi_course = int((per_learner > 1).sum())
    return {
        "k": k,
        "weights": dict(WEIGHTS),
        "learners_enrolled": int(len(per_learner)),
        "learners_with_more_than_one_course": multi_course,
        "learners_evaluated": len(learners),
        "splits": [{key: value for key, value in split.items() if key != "learners"} | {"learners_evaluated": len(split["learners"])} for split in splits],
        "mean_candidates": round(float(np.mean([row["candidates"] for row in learners])), 2) if learners else None,
        "hybrid": {f"ndcg_at_{k}": _mean(learners, "hybrid", 0), f"recall_at_{k}": _mean(learners, "hybrid", 1)},
        "popularity": {f"ndcg_at_{k}": _mean(learners, "popularity", 0), f"recall_at_{k}": _mean(learners, "popularity", 1)},
        f"ndcg_at_{k}_difference_interval": _bootstrap_difference(learners, 0),
        "enough_learners": len(learners) >= MIN_LEARNERS_FOR_A_VERDICT,
        "verdict": _verdict(learners, multi_course, int(len(per_learner)), k),
    }
