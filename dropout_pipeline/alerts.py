"""Telling people a run failed: a JSON post to an incoming webhook (Slack, Mattermost,
Teams and most chat tools accept `{"text": ...}`; the other fields are for machines).

The webhook's URL usually embeds a secret, so no message built here contains it.
"""

from __future__ import annotations

import httpx


class AlertNotDelivered(RuntimeError):
    """The webhook could not be reached or refused the alert."""


def failure_alert(job_name: str, run_id: str, partition_key: str | None, reason: str) -> dict:
    subject = f"{job_name} for {partition_key}" if partition_key else job_name
    return {
        "text": f"dropout_pipeline: run {run_id[:8]} of {subject} failed: {reason}",
        "job": job_name,
        "run_id": run_id,
        "partition": partition_key,
        "reason": reason,
    }


def post_alert(url: str, alert: dict, timeout_seconds: float = 10.0) -> None:
    try:
        response = httpx.post(url, json=alert, timeout=timeout_seconds)
    except httpx.HTTPError as error:
        raise AlertNotDelivered(f"the alert webhook could not be reached ({type(error).__name__})") from None
    if response.status_code >= 300:
        raise AlertNotDelivered(f"the alert webhook answered {response.status_code}")
