"""Plans meet Dagster: today's attempts read from the instance, and planned runs as run
requests tagged with the day and the step, whoever launches them (sensor, schedule, CLI)."""

from __future__ import annotations

import re

from collections.abc import Sequence
from datetime import date

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.lifecycle.facts import CatalogueEntry, course_facts, training_facts
from dropout_pipeline.lifecycle.plan import Outcome, Plan, PlannedRun, plan_day

DAY_TAG = "dropout/day"
STEP_TAG = "dropout/step"

_OUTCOMES = {
    dg.DagsterRunStatus.SUCCESS: Outcome.SUCCEEDED,
    dg.DagsterRunStatus.FAILURE: Outcome.FAILED,
    dg.DagsterRunStatus.CANCELED: Outcome.FAILED,
}


def attempts_on(instance: dg.DagsterInstance, day: date) -> dict[str, Outcome]:
    """Each step tried on `day` and what became of its newest run."""
    attempts: dict[str, Outcome] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(tags={DAY_TAG: day.isoformat()})):  # newest first
        run = record.dagster_run
        step = run.tags.get(STEP_TAG)
        if step and step not in attempts:
            attempts[step] = _OUTCOMES.get(run.status, Outcome.IN_FLIGHT)
    return attempts


def plan_now(instance: dg.DagsterInstance, engine: sa.Engine, catalogue: Sequence[CatalogueEntry], day: date) -> Plan:
    partitions = set(instance.get_dynamic_partitions(courses_partitions.name))
    with engine.connect() as connection:
        courses = course_facts(connection, catalogue, partitions, day)
        training = training_facts(connection)
    return plan_day(courses, training, day, attempts_on(instance, day))


def run_tags(run: PlannedRun, day: date) -> dict[str, str]:
    return {DAY_TAG: day.isoformat(), STEP_TAG: run.run_key}


def run_request(run: PlannedRun, day: date) -> dg.RunRequest:
    return dg.RunRequest(run_key=run.run_key, job_name=run.job_name, partition_key=run.partition_key, tags=run_tags(run, day))


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: what went wrong, not where (nor the
    exception's class path)."""
    while error.cause is not None:
        error = error.cause
    line = error.message.strip().splitlines()[-1]
    return re.sub(rf"^(?:\w+\.)*{re.escape(error.cls_name or '')}: ", "", line)[:500]


def failure_reason(step_failures: Sequence[dg.DagsterEvent], fallback: str = "run failed") -> str:
    """Why a run failed, in one line per failed step."""
    reasons = [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in step_failures
        if event.step_failure_data and event.step_failure_data.error
    ]
    return "; ".join(reasons) or fallback
