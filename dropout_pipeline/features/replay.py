"""Guarding the history replay against servers that ignore `as_of`."""

from __future__ import annotations

import pandas as pd


def as_of_ignored(snapshots: list[pd.DataFrame]) -> bool:
    """True when the first and last weekly snapshots show the same activity.

    A server that ignores `as_of` answers today's state for every date, which would
    put end-of-course data into week 1: exactly the leakage the history exists to avoid.
    """
    if len(snapshots) < 2:
        return False
    first, last = snapshots[0], snapshots[-1]
    activity = ["completed_blocks", "h5p_completed_contents", "discussion_total_interactions"]
    return len(first) == len(last) and float(last[activity].to_numpy().sum()) > 0 and first[activity].sum().equals(last[activity].sum())
