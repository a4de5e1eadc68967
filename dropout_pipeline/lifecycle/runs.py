"""Plans meet Dagster: today's attempts read from the instance, and planned runs as run
requests tagged with the day and the step, whoever launches them (sensor, schedule, CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

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


def attempts_on(instance: dg.DagsterInstance, day: date, forget_failures_before: datetime | None = None) -> dict[str, Outcome]:
    """Each step tried on `day` and what became of its newest run. Failures of runs created
    before `forget_failures_before` are left out, so they are planned again (a person who
    runs `dropout-pipeline run` after a failure wants it tried again, not tomorrow)."""
    attempts: dict[str, Outcome] = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(tags={DAY_TAG: day.isoformat()})):  # newest first
        step = record.dagster_run.tags.get(STEP_TAG)
        if not step or step in attempts:
            continue
        outcome = _OUTCOMES.get(record.dagster_run.status, Outcome.IN_FLIGHT)
        if outcome is Outcome.FAILED and forget_failures_before and record.create_timestamp < forget_failures_before:
            continue
        attempts[step] = outcome
    return attempts


def plan_now(
    instance: dg.DagsterInstance, engine: sa.Engine, catalogue: Sequence[CatalogueEntry], day: date, forget_failures_before: datetime | None = None
) -> Plan:
    partitions = set(instance.get_dynamic_partitions(courses_partitions.name))
    with engine.connect() as connection:
        courses = course_facts(connection, catalogue, partitions, day)
        training = training_facts(connection)
    return plan_day(courses, training, day, attempts_on(instance, day, forget_failures_before))


def run_tags(run: PlannedRun, day: date) -> dict[str, str]:
    return {DAY_TAG: day.isoformat(), STEP_TAG: run.run_key}


def run_request(run: PlannedRun, day: date) -> dg.RunRequest:
    return dg.RunRequest(run_key=run.run_key, job_name=run.job_name, partition_key=run.partition_key, tags=run_tags(run, day))
