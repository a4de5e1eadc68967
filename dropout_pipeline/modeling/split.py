"""Honest holdouts: whole courses, never rows of one course on both sides.

With two or more semesters of finished courses, the latest semester is held out: the
model is judged on courses that ran after everything it learned from, as it will be
used. With one semester, a deterministic quarter of its courses (by a hash of the
course id, so the same courses stay held out as data grows) is held out instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_courses: tuple[str, ...]
    strategy: str


def stable_rank(course_id: str) -> str:
    """An order of courses that never changes as data grows (a hash of the id)."""
    return hashlib.sha256(course_id.encode()).hexdigest()


def holdout_split(frame: pd.DataFrame) -> Split:
    courses = frame[["course_id", "semester"]].drop_duplicates()
    if courses["course_id"].nunique() < 2:
        raise ValueError(
            f"need finished courses on both sides of the split, have {courses['course_id'].nunique()}: "
            "honest evaluation holds out whole courses"
        )
    semesters = sorted(courses["semester"].unique())
    if len(semesters) >= 2:
        held = courses.loc[courses["semester"] == semesters[-1], "course_id"]
        strategy = f"latest semester held out ({semesters[-1]})"
    else:
        ordered = sorted(courses["course_id"], key=stable_rank)
        held = pd.Series(ordered[: max(1, len(ordered) // 4)])
        strategy = "a quarter of the courses held out (single semester)"
    held_set = set(held)
    in_holdout = frame["course_id"].isin(held_set)
    return Split(frame[~in_holdout], frame[in_holdout], tuple(sorted(held_set)), strategy)
