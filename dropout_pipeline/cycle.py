"""`dropout-pipeline run` and `demo`: what the daemon would do today, done now.

The planner the daemon's sensor and schedule ask (lifecycle.plan) decides, and the
cycle goes through the daemon's day in its order (DAEMON_DAY): the lifecycle sensor,
ticking until it has nothing more to launch, the 02:00 retrain, and the sensor from
06:00. Each step is a run of the job the daemon would launch, tagged as the
daemon tags it, on a Dagster instance, so the UI shows every materialization and check,
and a step already done today (by the daemon or an earlier `run`) is not done again; a
step that failed before this cycle started is tried again. The catalogue is stored
first, through the same `discover_courses` job. A step that fails is reported and the
others go on.

The daemon may be working at the same time: the cycle plans again before every step and
takes the step (lifecycle.runs.take_step) as the sensor and the schedule do, so a step the
daemon launched meanwhile is left to it, and no step runs twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from datetime import time as time_of_day

import dagster as dg
import sqlalchemy as sa

from dropout_pipeline.lifecycle.facts import CatalogueEntry, catalogue_from_database
from dropout_pipeline.lifecycle.failures import failure_reason
from dropout_pipeline.lifecycle.plan import DAEMON_DAY, CourseState, Phase, Plan, PlannedRun, Trigger, run_key
from dropout_pipeline.lifecycle.runs import give_back, plan_now, run_tags, take_step
from dropout_pipeline.modeling.retrain import NIGHTLY_MODELS
from dropout_pipeline.source_api.errors import SourceApiError


@dataclass
class StepResult:
    run: PlannedRun
    ok: bool
    outcome: str  # what it did, or why it failed


@dataclass
class CycleReport:
    day: date
    steps: list[StepResult] = field(default_factory=list)
    plan: Plan | None = None  # where every course stands once the cycle is done

    def attempted(self, phase: Phase) -> list[StepResult]:
        return [step for step in self.steps if step.run.phase is phase]

    def succeeded(self, phase: Phase) -> list[StepResult]:
        return [step for step in self.attempted(phase) if step.ok]

    @property
    def failures(self) -> list[StepResult]:
        return [step for step in self.steps if not step.ok]


class Progress:
    """Prints each step with the time since the cycle started."""

    def __init__(self, echo: Callable[[str], None] = print):
        self.started = time.monotonic()
        self.echo = echo

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:6.1f}s] {message}")


def _logging(verbose: bool) -> dict:
    """Dagster's console log: every DEBUG event with --verbose, else only what is critical
    (every event still goes to the instance's event log, which the UI shows)."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "CRITICAL"}}}}


def _model_outcome(name: str, metadata: Mapping) -> str:
    if not metadata["trained"].value:
        return f"{name}: not trained: {metadata['reason'].value}"
    verdict = "now the default" if metadata["promoted_to_default"].value else "refused by the gate: the default keeps serving"
    return f"{name} v{metadata['model_version'].value}: ROC AUC {metadata['roc_auc'].value:.3f} on held-out courses, {verdict}"


def _outcome(phase: Phase, result: dg.ExecuteInProcessResult) -> str:
    """What a run did, from its materializations (read even when a gate check failed it)."""
    done = {event.asset_key.to_user_string(): event.materialization.metadata for event in result.get_asset_materialization_events()}
    failed = failure_reason([event for event in result.all_events if event.is_step_failure]) if not result.success else ""
    if phase is Phase.RETRAIN and done:
        trained = [_model_outcome(name, done[name]) for name in NIGHTLY_MODELS.values() if name in done]
        crashed = [f"{name}: {failed}" for name in NIGHTLY_MODELS.values() if name not in done]
        return "; ".join(trained + crashed)
    if failed:
        return failed
    if phase is Phase.REGISTER:
        catalogue = done["course_catalog"]
        return f"{catalogue['dagster/row_count'].value} courses in the catalogue, {len(catalogue['new_courses'].value)} new"
    if phase is Phase.FREEZE:
        frozen = done["training_data"]
        if "snapshot_weeks" not in frozen:
            return frozen["note"].value
        return f"{frozen['rows_added'].value} training rows frozen over {frozen['snapshot_weeks'].value} weeks"
    scored = done["predictions"]
    levels = scored["risk_levels"].value
    return (
        f"{scored['dagster/row_count'].value} learners predicted with {scored['model'].value}: "
        f"{levels['HIGH']} high, {levels['MEDIUM']} medium, {levels['LOW']} low risk"
    )


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, run: PlannedRun, day: date, verbose: bool = False) -> StepResult:
    """One planned run, in this process, tagged as the daemon would tag it."""
    result = defs.resolve_job_def(run.job_name).execute_in_process(
        instance=instance, partition_key=run.partition_key, tags=run_tags(run, day), run_config=_logging(verbose), raise_on_error=False
    )
    return StepResult(run, result.success, _outcome(run.phase, result))


def _overview(plan: Plan) -> str:
    counts = ", ".join(f"{plan.count(state)} {state}" for state in CourseState)
    return f"{plan.day}: {len(plan.courses)} courses ({counts})"


def _next_run(plan: Plan, trigger: Trigger, at: time_of_day, taken: set[str]) -> PlannedRun | None:
    return next((run for run in plan.runs_for(trigger, at) if run.phase is not Phase.REGISTER and run.run_key not in taken), None)


def run_day(
    defs: dg.Definitions, instance: dg.DagsterInstance, engine: sa.Engine, read_catalogue: Callable[[], list[CatalogueEntry]],
    day: date, progress: Progress, verbose: bool = False, *, grace_days: int,
) -> CycleReport:
    report = CycleReport(day)
    started = datetime.now(timezone.utc)

    def carry_out(run: PlannedRun, title: str) -> None:
        progress(title)
        step = execute(defs, instance, run, day, verbose)
        report.steps.append(step)
        if not step.ok:
            give_back(engine, run)
        progress(f"  {'done' if step.ok else 'FAILED'}: {step.outcome}")

    carry_out(PlannedRun(Phase.REGISTER, run_key(Phase.REGISTER, day, "catalogue"), "store the catalogue"), "reading the catalogue (GET /courses/)")
    try:
        catalogue, moments = read_catalogue(), DAEMON_DAY
    except SourceApiError as error:  # as the daemon when the platform is down: no sensor work, the retrain from the stored courses
        progress(f"  the platform cannot be reached ({error}): only the retrain, planned from the courses stored")
        with engine.connect() as connection:
            catalogue = catalogue_from_database(connection)
        moments = tuple((trigger, at) for trigger, at in DAEMON_DAY if trigger is Trigger.NIGHTLY)
    plan = lambda: plan_now(instance, engine, catalogue, day, grace_days, forget_failures_before=started)  # noqa: E731
    progress(_overview(plan()))
    taken: set[str] = set()  # steps this cycle carried out or found taken: a schedule ticks once, the sensor until it has nothing left
    for trigger, at in moments:
        while run := _next_run(plan(), trigger, at, taken):
            taken.add(run.run_key)
            if not take_step(engine, instance, run, "cli"):
                progress(f"{run.phase.name.lower()}: {run.partition_key or 'all courses'}: taken by the daemon meanwhile, left to it")
                continue
            subject = f"{run.partition_key}: " if run.partition_key else ""
            carry_out(run, f"{run.phase.name.lower()} {len(taken)}: {subject}{run.reason}")
    report.plan = plan()
    if not report.attempted(Phase.RETRAIN):
        progress(f"retrain: {report.plan.retrain_reason}")
    return report
