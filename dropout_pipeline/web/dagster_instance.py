"""What the web app asks of Dagster's instance (DAGSTER_HOME): a course's refresh queued as
a run for the daemon, a run's status, and the calibration table a model's
materialization recorded.

A requested refresh is the planner's refresh of that course (lifecycle.plan's PlannedRun
for Phase.REFRESH, tagged by lifecycle.runs.run_tags): to the planner and the daemon it is
today's refresh of the course, so the sensor never launches a second one beside it. It
goes into the instance's queue like the sensor's runs; the daemon dequeues and launches it
through the code location of workspace.yaml (LOCATION_NAME must match its name). The run
is created without an execution plan: building one here would resolve the platform's
secrets (`dg.EnvVar`), which the web app never holds; the run worker plans it in the
daemon's environment.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from datetime import date, datetime, timezone

import dagster as dg

from dropout_pipeline.lifecycle.failures import failure_reason
from dropout_pipeline.lifecycle.plan import Phase, PlannedRun, run_key
from dropout_pipeline.lifecycle.runs import IN_FLIGHT, PARTITION_TAG, run_tags

LOCATION_NAME = "dropout_pipeline"  # workspace.yaml's location_name, and pyproject's code_location_name
DEFINITIONS_MODULE = "dropout_pipeline.definitions"
REQUESTED_BY_TAG = "dropout/requested_by"


class RefreshRefused(RuntimeError):
    """The course cannot be refreshed now, for a reason a person can act on."""


def refresh_run(course_id: str, day: date, requested_by: str) -> PlannedRun:
    """The planner's refresh of the course today, asked for by a person."""
    return PlannedRun(Phase.REFRESH, run_key(Phase.REFRESH, day, course_id), f"refresh requested by {requested_by}", course_id)


def _timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None) if value else None


class DagsterGateway:
    """The instance, and the code location loaded the first time a run is queued (loading
    it imports every definition: a few seconds, paid once per process)."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._lock = threading.Lock()
        self._workspace_process = None

    def close(self) -> None:
        if self._workspace_process is not None:
            self._workspace_process.__exit__(None, None, None)
            self._workspace_process = None

    def _code_location(self):
        from dagster._core.remote_origin import InProcessCodeLocationOrigin
        from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

        if self._workspace_process is None:
            origin = InProcessCodeLocationOrigin(
                LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()),
                location_name=LOCATION_NAME,
            )
            self._workspace_process = WorkspaceProcessContext(self.instance, InProcessWorkspaceLoadTarget(origin)).__enter__()
        workspace = self._workspace_process.create_request_context()
        return workspace, workspace.get_code_location(LOCATION_NAME)

    def in_flight_refresh(self, course_id: str) -> dg.DagsterRun | None:
        runs = self.instance.get_runs(
            filters=dg.RunsFilter(job_name=Phase.REFRESH.job_name, tags={PARTITION_TAG: course_id}, statuses=list(IN_FLIGHT)), limit=1
        )
        return runs[0] if runs else None

    def queue_refresh(self, course_id: str, day: date, requested_by: str) -> tuple[str, bool]:
        """Queue the course's refresh; (run id, True when queued now). A refresh of the course
        already queued or running is returned instead of a second one."""
        from dagster._core.definitions.selector import JobSubsetSelector

        with self._lock:
            running = self.in_flight_refresh(course_id)
            if running is not None:
                return running.run_id, False
            if not self.instance.has_dynamic_partition("courses", course_id):
                raise RefreshRefused("the course is not registered as a partition yet: the lifecycle sensor registers it at its next tick")
            planned = refresh_run(course_id, day, requested_by)
            workspace, location = self._code_location()
            repository = next(iter(location.get_repositories().values()))
            job = location.get_job(JobSubsetSelector(location_name=LOCATION_NAME, repository_name=repository.name, job_name=planned.job_name, op_selection=None))
            tags = {**(job.run_tags or {}), **run_tags(planned, day), PARTITION_TAG: course_id, REQUESTED_BY_TAG: requested_by}
            run = self.instance.create_run(
                job_name=job.name, run_id=str(uuid.uuid4()), run_config={}, resolved_op_selection=job.resolved_op_selection,
                step_keys_to_execute=None, status=dg.DagsterRunStatus.NOT_STARTED, op_selection=None, root_run_id=None,
                parent_run_id=None, tags=tags, job_snapshot=job.job_snapshot, execution_plan_snapshot=None,
                parent_job_snapshot=job.parent_job_snapshot, remote_job_origin=job.get_remote_origin(),
                job_code_origin=job.get_python_origin(), asset_selection=None, asset_check_selection=None, asset_graph=repository.asset_graph,
            )
            self.instance.submit_run(run.run_id, workspace)
            return run.run_id, True

    def run_status(self, run_id: str) -> dict | None:
        """A run's job, course, status and times; why it failed, when it did."""
        try:
            uuid.UUID(run_id)
        except ValueError:
            return None
        record = self.instance.get_run_record_by_id(run_id)
        if record is None:
            return None
        run = record.dagster_run
        failure = None
        if run.status is dg.DagsterRunStatus.FAILURE:
            failures = [entry.dagster_event for entry in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
            failure = failure_reason([event for event in failures if event is not None], fallback="the run failed before any step")
        return {
            "run_id": run.run_id,
            "job_name": run.job_name,
            "course_id": run.tags.get(PARTITION_TAG),
            "status": run.status.value,
            "requested_by": run.tags.get(REQUESTED_BY_TAG),
            "created_at": _timestamp(record.create_timestamp.timestamp() if record.create_timestamp else None),
            "started_at": _timestamp(record.start_time),
            "ended_at": _timestamp(record.end_time),
            "finished": run.is_finished,
            "failure": failure,
        }

    def reliability(self, model_name: str, model_version: int) -> list[dict] | None:
        """The reliability table (risk bins: mean predicted, observed rate) on held-out rows that
        the model's materialization recorded; None when the instance holds none for it."""
        records = self.instance.fetch_materializations(dg.AssetKey(model_name), limit=200).records
        for record in records:
            materialization = record.asset_materialization
            metadata = materialization.metadata if materialization else {}
            version = metadata.get("model_version")
            if version is not None and version.value == model_version and "calibration" in metadata:
                table = (metadata["calibration"].value or {}).get("holdout_reliability")
                return list(table) if table else None
        return None
