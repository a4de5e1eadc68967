"""What to do next within a course: the units, videos and H5P exercises that classmates who
passed had done by this course week and this learner has not, ranked.

A teacher who sees a learner at risk needs something to suggest, and the course's own
history knows what passing looked like at this point of the course. Two groups of
classmates can say it:

- the learners of the same course's earlier runs (same ORG+CODE, started before this run,
  frozen into `training_data`, so their outcome is known), as they were at the end of the
  same course week: their last frozen snapshot of that week, so nothing they did later
  counts. Passed means `is_passed`; everyone else (failed or dropped out) is "the others";
- when no earlier run has MIN_REFERENCE_PASSED such passers: this run's classmates whose
  grade now is in the top third of the class (ON_TRACK_SHARE), against the rest; the
  learner is left out of both (not compared with themselves). Nobody in a running course
  has passed yet, so this is a proxy, and the answer says which it used.

What "done" means, from what is stored:
- a unit: the MOOC export gives how many blocks a learner has completed, not which ones,
  so the units done are the first `completed_blocks` in course order;
- an H5P exercise: a score row with a finish time; a video: its status `completed`;
- an earlier run's frozen history keeps those counts per snapshot, not which contents
  (the raw rows of a course hold only its latest pull), so an earlier learner who had
  finished c quizzes by week k is taken to have done this run's first c quizzes in course
  order (content ids ascending), as with units. The runs of one course share its order.

Only items of this run that someone here has already done are listed (so they are
released: nothing from later in the course), and only those the learner has not done.

The rank, per item: lift = the share of passers who had done it minus the share of the
others who had. Items done by fewer than MIN_SHARE_OF_PASSED of the passers, or with no
lift, are left out: they are not what passing looked like. Ties go to the item more
passers had done, then to the earlier one in the course. At most PER_KIND_LIMIT items of
one kind are listed, so ten consecutive units do not crowd out the quizzes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dropout_pipeline.analytics.course_keys import course_subject
from dropout_pipeline.features.calendar import CourseCalendar
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import read_frame
from dropout_pipeline.storage.feature_tables import learnable
from dropout_pipeline.storage.raw_tables import read_raw_columns

MIN_REFERENCE_PASSED: Final = 5
"""Fewer passers than this say nothing about what passing looks like."""
ON_TRACK_SHARE: Final = 1 / 3
"""Current classmates only: the top third of the class by grade now stands in for those who will pass."""
MIN_SHARE_OF_PASSED: Final = 0.5
"""An item at least half of the passers had done by this week: what passing looked like."""
DEFAULT_LIMIT: Final = 10
PER_KIND_LIMIT: Final = 5

Kind = Literal["unit", "h5p", "video"]
KINDS: Final[tuple[Kind, ...]] = ("unit", "h5p", "video")
COUNT_COLUMNS: Final[dict[Kind, str]] = {"unit": "completed_blocks", "h5p": "h5p_completed_contents", "video": "video_completed_videos"}
ITEM_COLUMNS = ["kind", "position", "title", "content_id"]


# --- This run: its items and what each learner has done -------------------------------------


def read_course_state(connection: sa.Connection, course_id: str) -> dict[str, pd.DataFrame]:
    return read_raw_columns(connection, {
        "enrollments": ["is_active"],
        "mooc_progress": ["completed_blocks"],
        "mooc_grades": ["percent_grade"],
        "h5p_scores": ["content_id", "content_title", "finished_at"],
        "video_progress": ["content_id", "content_title", "status"],
    }, course_id)


def _contents(rows: pd.DataFrame, kind: Kind, label: str) -> pd.DataFrame:
    """The contents someone has a row for, in course order (content id), each titled as most rows title it."""
    if rows.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS)
    titled = rows.assign(content_title=rows["content_title"].fillna(rows["content_id"].map(lambda c: f"{label} {c}")))
    titles = titled.groupby("content_id")["content_title"].agg(lambda t: t.value_counts().index[0]).sort_index()
    return pd.DataFrame({"kind": kind, "position": np.arange(1, len(titles) + 1), "title": titles.to_numpy(), "content_id": titles.index.to_numpy()})


def _done_contents(state: dict[str, pd.DataFrame]) -> dict[Kind, pd.DataFrame]:
    """The rows that say a content is done: an H5P score with a finish time, a completed video."""
    scores, videos = state["h5p_scores"], state["video_progress"]
    return {"h5p": scores[scores["finished_at"].notna()], "video": videos[videos["status"] == "completed"]}


def course_items(state: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every unit, H5P exercise and video of the run that some learner of it has done (so it
    is released), numbered in course order within its kind."""
    reached = int(state["mooc_progress"]["completed_blocks"].max()) if not state["mooc_progress"].empty else 0
    units = pd.DataFrame({"kind": "unit", "position": np.arange(1, reached + 1), "title": [f"Unit {n}" for n in range(1, reached + 1)], "content_id": None})
    done = _done_contents(state)
    parts = [part for part in (units, _contents(done["h5p"], "h5p", "H5P content"), _contents(done["video"], "video", "Video")) if not part.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ITEM_COLUMNS)


def contents_done(state: dict[str, pd.DataFrame], items: pd.DataFrame) -> pd.DataFrame:
    """(user_id, kind, position) of every H5P exercise and video each learner of the run has done."""
    position = items[items["content_id"].notna()].set_index(["kind", "content_id"])["position"]
    parts = []
    for kind, rows in _done_contents(state).items():
        keys = pd.MultiIndex.from_arrays([np.full(len(rows), kind), rows["content_id"].to_numpy()])
        parts.append(pd.DataFrame({"user_id": rows["user_id"].to_numpy(), "kind": kind, "position": position.reindex(keys).to_numpy()}))
    return pd.concat(parts, ignore_index=True).dropna(subset=["position"]).astype({"position": int})


# --- Shares of passers and others who had done each item ---------------------------------------


def _reached(items: pd.DataFrame, kind: Kind, learners: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """learners x items of the kind: True where the learner had done the item. From a count when
    `learners` has the kind's count column (the first c in course order), else from `rows`."""
    positions = items.loc[items["kind"] == kind, "position"].to_numpy(dtype=int)
    column = COUNT_COLUMNS[kind]
    if column in learners.columns:
        return learners[column].fillna(0).to_numpy()[:, None] >= positions[None, :]
    reached = np.zeros((len(learners), len(positions)), dtype=bool)
    of_kind = rows[rows["kind"] == kind]
    learner = pd.Index(learners["learner"]).get_indexer(of_kind["learner"])
    item = pd.Index(positions).get_indexer(of_kind["position"])
    known = (learner >= 0) & (item >= 0)
    reached[learner[known], item[known]] = True
    return reached


def item_shares(items: pd.DataFrame, learners: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The items with the share of passers and of the others who had done each, and the lift.
    `learners`: one row each (learner, passed, and the counts known); `rows`: (learner, kind,
    position) for the kinds without a count."""
    passed = learners["passed"].to_numpy(dtype=bool)
    parts = []
    for kind in KINDS:
        reached = _reached(items, kind, learners, rows)
        parts.append(items[items["kind"] == kind].assign(
            share_passed=reached[passed].mean(axis=0) if passed.any() else 0.0,
            share_others=reached[~passed].mean(axis=0) if (~passed).any() else 0.0,
        ))
    return pd.concat(parts, ignore_index=True).assign(lift=lambda f: f["share_passed"] - f["share_others"])


def what_passing_looked_like(shares: pd.DataFrame) -> pd.DataFrame:
    """The items most passers had done and the others less often, best first (the module's rank)."""
    kept = shares[(shares["share_passed"] >= MIN_SHARE_OF_PASSED) & (shares["lift"] > 0)]
    return kept.sort_values(["lift", "share_passed", "position", "kind"], ascending=[False, False, True, True], ignore_index=True)


# --- The classmates who went before, or the ones on track now ----------------------------------


def earlier_runs(connection: sa.Connection, course: dict) -> list[str]:
    """The same course's runs that started before this one (same ORG+CODE), oldest first."""
    c = schema.courses
    rows = connection.execute(
        sa.select(c.c.course_id).where(c.c.org == course["org"], c.c.start < course["start"]).order_by(c.c.start, c.c.course_id)
    ).scalars()
    subject = course_subject(course["course_id"])
    return [course_id for course_id in rows if course_subject(course_id) == subject]


def counts_at_week(connection: sa.Connection, course_ids: list[str], week: int) -> pd.DataFrame:
    """Each frozen learner of the runs as at the end of course week `week` (the run's last
    week if it was shorter): the last snapshot of that week, its counts and the outcome."""
    t = schema.training_data
    columns = [t.c.user_id, t.c.course_id, t.c.snapshot_week, t.c.snapshot_date, t.c.is_passed, *(t.c[name] for name in COUNT_COLUMNS.values())]
    rows = read_frame(connection, sa.select(*columns).where(learnable(), t.c.course_id.in_(course_ids), t.c.snapshot_week <= week))
    if rows.empty:
        return rows
    last_week = rows.groupby("course_id")["snapshot_week"].transform("max")
    at_week = rows[rows["snapshot_week"] == last_week].sort_values("snapshot_date")
    return at_week.drop_duplicates(["user_id", "course_id"], keep="last").assign(passed=lambda f: f["is_passed"].astype(bool))


def from_earlier_runs(connection: sa.Connection, course: dict, week: int, items: pd.DataFrame) -> tuple[dict, pd.DataFrame] | None:
    """The reference and the shares of the course's earlier runs, when they have enough passers."""
    runs = earlier_runs(connection, course)
    counts = counts_at_week(connection, runs, week) if runs else pd.DataFrame()
    if counts.empty or counts["passed"].sum() < MIN_REFERENCE_PASSED:
        return None
    learners = counts.assign(learner=np.arange(len(counts)))
    reference = {"source": "earlier_runs", "course_ids": sorted(counts["course_id"].unique()), "week": week,
                 "passed": int(counts["passed"].sum()), "others": int((~counts["passed"]).sum())}
    return reference, item_shares(items, learners, pd.DataFrame(columns=["learner", "kind", "position"]))


def on_track_now(state: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The run's enrolled learners with a grade: passed is True for the class's top third by grade now (and above 0)."""
    grades = state["mooc_grades"].merge(state["enrollments"][["user_id", "course_id"]], on=["user_id", "course_id"])
    cut = grades["percent_grade"].quantile(1 - ON_TRACK_SHARE) if not grades.empty else 0.0
    return grades.assign(passed=(grades["percent_grade"] >= cut) & (grades["percent_grade"] > 0))[["user_id", "passed"]]


def from_classmates(state: dict[str, pd.DataFrame], week: int, items: pd.DataFrame, done: pd.DataFrame) -> tuple[dict, pd.DataFrame, pd.Series]:
    """The reference and the shares of this run's top third by grade against the rest (every
    learner counted: next_steps_in leaves the learner asking out), and who is in which."""
    learners = on_track_now(state).merge(state["mooc_progress"][["user_id", "completed_blocks"]], on="user_id", how="left")
    learners = learners.assign(learner=learners["user_id"])
    reference = {"source": "current_classmates", "course_ids": sorted(state["enrollments"]["course_id"].unique()), "week": week,
                 "passed": int(learners["passed"].sum()), "others": int((~learners["passed"]).sum())}
    return reference, item_shares(items, learners, done.rename(columns={"user_id": "learner"})), learners.set_index("user_id")["passed"]


def without_the_learner(reference: dict, shares: pd.DataFrame, learner_passed: bool) -> tuple[dict, pd.DataFrame]:
    """The reference and the shares of the items the learner has not done, the learner left out
    of their group: a group of n of whom a share s had done an item becomes n - 1 with s * n / (n - 1)."""
    group, share = ("passed", "share_passed") if learner_passed else ("others", "share_others")
    n = reference[group]
    rescaled = shares[share] * n / (n - 1) if n > 1 else 0.0
    return {**reference, group: n - 1}, shares.assign(**{share: rescaled}).assign(lift=lambda f: f["share_passed"] - f["share_others"])


def _describe(reference: dict) -> str:
    if reference["source"] == "earlier_runs":
        runs = ", ".join(reference["course_ids"])
        return (f"{reference['passed']} learners who passed earlier runs of this course ({runs}) against {reference['others']} who did not, "
                f"as they were at the end of course week {reference['week']}")
    return (f"no earlier run of this course has {MIN_REFERENCE_PASSED} learners who passed, so {reference['passed']} classmates "
            f"in the top third of the class by grade now stand in for those who pass, against the other {reference['others']}")


# --- A learner's next steps ----------------------------------------------------------------------


def course_week_now(course: dict, today: date) -> int | None:
    """The course week of `today` (the last week once the course is over); None before it starts."""
    calendar = CourseCalendar(course["course_id"], course["start"], course["end"])
    if today < calendar.start_date:
        return None
    week = calendar.week_of(today)
    return min(week, calendar.week_of(calendar.end_date)) if calendar.end_date else week


@dataclass(frozen=True)
class CourseContext:
    """What the next steps of every learner of a course share on a day, read and computed once
    (the web app keeps it while the course's runs are unchanged): a few hundred rows, whatever
    the size of the class."""

    course_id: str
    week: int | None
    reference: dict | None
    shares: pd.DataFrame  # item_shares, for the course and day
    in_reference: pd.Series | None  # current classmates: user_id -> in the top third; None for earlier runs
    units_done: pd.Series  # user_id -> completed units (the first ones in course order)
    contents_done: pd.DataFrame  # user_id, kind, position of H5P exercises and videos done


def course_context(connection: sa.Connection, course: dict, today: date) -> CourseContext:
    state = read_course_state(connection, course["course_id"])
    enrolled = state["enrollments"]["user_id"]
    progress = state["mooc_progress"].set_index("user_id")["completed_blocks"]
    units_done = progress.reindex(enrolled.to_numpy()).fillna(0).astype(int)
    week = course_week_now(course, today)
    items = course_items(state)
    done = contents_done(state, items)
    if week is None:
        return CourseContext(course["course_id"], None, None, items, None, units_done, done)
    earlier = from_earlier_runs(connection, course, week, items)
    reference, shares, in_reference = (*earlier, None) if earlier else from_classmates(state, week, items, done)
    return CourseContext(course["course_id"], week, reference, shares, in_reference, units_done, done)


def _item(row) -> dict:
    return {"kind": row.kind, "title": row.title, "position": int(row.position), "content_id": None if pd.isna(row.content_id) else int(row.content_id),
            "share_of_passed": round(float(row.share_passed), 4), "share_of_others": round(float(row.share_others), 4), "lift": round(float(row.lift), 4)}


def next_steps_in(context: CourseContext, user_id: int, limit: int = DEFAULT_LIMIT) -> dict | None:
    """The ranked next steps of one learner of the course, with who they were compared with; None
    when the learner is not enrolled in it."""
    if user_id not in context.units_done.index:
        return None
    answer = {"course_id": context.course_id, "user_id": user_id, "week": context.week, "reference": None, "items": [], "note": None}
    if context.week is None:
        return {**answer, "note": "the course has not started yet: nobody has done anything to compare with"}
    shares, mine = context.shares, context.contents_done[context.contents_done["user_id"] == user_id]
    done = pd.MultiIndex.from_frame(mine[["kind", "position"]]) if not mine.empty else pd.MultiIndex.from_arrays([[], []])
    todo = shares[~pd.MultiIndex.from_frame(shares[["kind", "position"]]).isin(done)
                  & ~((shares["kind"] == "unit") & (shares["position"] <= int(context.units_done.loc[user_id])))]
    reference = context.reference
    if context.in_reference is not None and user_id in context.in_reference.index:
        reference, todo = without_the_learner(reference, todo, bool(context.in_reference.loc[user_id]))
    answer["reference"] = {**reference, "description": _describe(reference)}
    if reference["passed"] < MIN_REFERENCE_PASSED:
        return {**answer, "note": f"fewer than {MIN_REFERENCE_PASSED} learners to learn from what passing looks like: nothing to suggest yet"}
    chosen = what_passing_looked_like(todo).groupby("kind", sort=False).head(PER_KIND_LIMIT).head(limit)
    answer["items"] = [_item(row) for row in chosen.itertuples()]
    if not answer["items"]:
        answer["note"] = "the learner has done everything most passers had done by this week"
    return answer


def next_steps(connection: sa.Connection, course: dict, user_id: int, today: date, limit: int = DEFAULT_LIMIT) -> dict | None:
    return next_steps_in(course_context(connection, course, today), user_id, limit)
