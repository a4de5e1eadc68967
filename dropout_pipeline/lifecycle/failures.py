"""Why a run failed, in a line a person reads (the CLI's summary, the alert webhook)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import dagster as dg


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: what went wrong, not where (nor the
    exception's class path)."""
    while error.cause is not None:
        error = error.cause
    line = error.message.strip().splitlines()[-1]
    return re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name or '')}: ", "", line)[:500]


def failure_reason(step_failures: Sequence[dg.DagsterEvent], fallback: str = "run failed") -> str:
    """Why a run failed, one clause per failed step."""
    reasons = [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in step_failures
        if event.step_failure_data and event.step_failure_data.error
    ]
    return "; ".join(reasons) or fallback
