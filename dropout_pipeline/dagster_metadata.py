"""Materialization metadata shared by the assets: counts, costs and previews.

Previews leave out personal columns: the Dagster UI is seen by engineers, not only
by the teachers entitled to learners' names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
import pandas as pd

from dropout_pipeline.source_api.client import CallStats

PERSONAL_COLUMNS = {"username", "email", "full_name", "attributes", "section_breakdown"}


def preview(rows: Sequence[Mapping] | pd.DataFrame, limit: int = 5) -> dg.MetadataValue:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows[:limit]))
    frame = frame.drop(columns=[c for c in frame.columns if c in PERSONAL_COLUMNS | {"id"}]).head(limit)
    return dg.MetadataValue.md(frame.to_markdown(index=False) if len(frame) else "_no rows_")


def pull_metadata(rows: Sequence[Mapping], stats: CallStats) -> dict[str, dg.MetadataValue]:
    return {
        "dagster/row_count": dg.MetadataValue.int(len(rows)),
        "api_calls": dg.MetadataValue.int(stats.calls),
        "retries": dg.MetadataValue.int(stats.retries),
        "learners_not_found": dg.MetadataValue.int(len(stats.not_found)),
        "learners_not_found_sample": dg.MetadataValue.json(sorted(stats.not_found)[:10]),
        "duration_seconds": dg.MetadataValue.float(round(stats.duration_seconds, 3)),
        "preview": preview(rows),
    }


def check_result(check_name: str, outcome, severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR, asset_key: str | None = None) -> dg.AssetCheckResult:
    """A CheckOutcome (features.validation) as a Dagster check result."""
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=bool(outcome.passed),
        severity=severity,
        description=outcome.description,
        metadata={key: dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value for key, value in outcome.metadata.items()},
    )
