"""Plans meet Dagster: today's attempts read from the instance, and planned runs as run
requests tagged with the day and the step, whoever launches them (sensor, schedule, CLI).

Every launcher takes a step (lifecycle_tables.claim_step) before launching it, so the
sensor, the 02:00 schedule and `dropout-pipeline run`, planning at the same moment,
launch each step once. A step whose run failed or was cancelled is given back: by the
run-failure sensor for the daemon's runs, by the CLI for its own, and by whoever next
finds its claim held by a run that ended so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.clock import utc_now
from dropout_pipeline.defs.partitions import courses_partitions
from dropout_pipeline.lifecycle.facts import CatalogueEntry, course_facts, training_facts
from dropout_pipeline.lifecycle.plan import Outcome, Phase, Plan, PlannedRun, in_flight_key, plan_day
from dropout_pipeline.storage.lifecycle_tables import claim_step, release_step

DAY_TAG = "dropout/day"
STEP_TAG = "dropout/step"

PARTITION_TAG = "dagster/partition"
IN_FLIGHT = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
_PHASES = {phase.job_name: phase for phase in Phase}

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
    return {**_in_flight_of_any_day(instance), **attempts}


def _in_flight_of_any_day(instance: dg.DagsterInstance) -> dict[str, Outcome]:
    """Planned runs still queued or running, whatever day they were planned for: a refresh
    queued yesterday behind a busy queue is waited for today, not launched a second time."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=list(IN_FLIGHT)))
    return {
        in_flight_key(_PHASES[record.dagster_run.job_name], record.dagster_run.tags.get(PARTITION_TAG, "")): Outcome.IN_FLIGHT
        for record in records
        if STEP_TAG in record.dagster_run.tags and record.dagster_run.job_name in _PHASES
    }


def plan_now(
    instance: dg.DagsterInstance, engine: sa.Engine, catalogue: Sequence[CatalogueEntry], day: date, grace_days: int,
    forget_failures_before: datetime | None = None,
) -> Plan:
    partitions = set(instance.get_dynamic_partitions(courses_partitions.name))
    with engine.connect() as connection:
        courses = course_facts(connection, catalogue, partitions, day)
        training = training_facts(connection)
    return plan_day(courses, training, day, attempts_on(instance, day, forget_failures_before), grace_days)


def run_tags(run: PlannedRun, day: date) -> dict[str, str]:
    return {DAY_TAG: day.isoformat(), STEP_TAG: run.run_key}


def run_request(run: PlannedRun, day: date) -> dg.RunRequest:
    return dg.RunRequest(run_key=run.run_key, job_name=run.job_name, partition_key=run.partition_key, tags=run_tags(run, day))


def _ended_without_success(instance: dg.DagsterInstance, step_key: str) -> bool:
    records = instance.get_run_records(filters=dg.RunsFilter(tags={STEP_TAG: step_key}), limit=1)  # newest first
    return bool(records) and _OUTCOMES.get(records[0].dagster_run.status) is Outcome.FAILED


def take_step(engine: sa.Engine, instance: dg.DagsterInstance, run: PlannedRun, launcher: str) -> bool:
    """Claim the step for this launcher; a claim left by a run that failed or was cancelled
    is taken over."""
    with engine.begin() as connection:
        if claim_step(connection, run.run_key, launcher, utc_now()):
            return True
    if not _ended_without_success(instance, run.run_key):
        return False
    with engine.begin() as connection:
        release_step(connection, run.run_key)
        return claim_step(connection, run.run_key, launcher, utc_now())


def give_back(engine: sa.Engine, run: PlannedRun) -> None:
    with engine.begin() as connection:
        release_step(connection, run.run_key)


def claimed_requests(engine: sa.Engine, runs: Sequence[PlannedRun], day: date, launcher: str) -> list[dg.RunRequest]:
    """The planned runs this launcher took, as run requests; a step another launcher took
    at the same moment is left to it."""
    with engine.begin() as connection:
        return [run_request(run, day) for run in runs if claim_step(connection, run.run_key, launcher, utc_now())]


def release_failed_step(engine: sa.Engine, run: dg.DagsterRun) -> None:
    """A planned run failed: its step may be taken again (by `dropout-pipeline run` now, by
    the daemon on another day)."""
    if step_key := run.tags.get(STEP_TAG):
        with engine.begin() as connection:
            release_step(connection, step_key)
