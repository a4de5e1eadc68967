"""Model assets: nightly retraining (the candidate best at early warning on its training
courses' out-of-fold predictions deployed), gated by blocking checks on the held-out
courses and against the current default."""

import dagster as dg

from dropout_pipeline.defs.features import training_data
from dropout_pipeline.defs.resources import DatabaseResource, PipelineSettings
from dropout_pipeline.modeling.report import choice_table, overall_table, per_week_table
from dropout_pipeline.modeling.retrain import NIGHTLY_MODELS, CannotTrain, RetrainRequest, RetrainResult, retrain
from dropout_pipeline.clock import utc_now
from dropout_pipeline.storage.lifecycle_tables import learnable_rows, record_training_attempt
from dropout_pipeline.storage.raw_tables import course_ids_of_org

GROUP = "models"


def _gate_checks(asset_name: str) -> list[dg.AssetCheckSpec]:
    """The gate's verdicts. A refused challenger (or a target that cannot train) is the gate
    working, not a failure: the checks fail with WARN severity, the run succeeds, no alert
    is posted, and the default keeps serving (retrain decides promotion on the same verdicts)."""
    return [
        dg.AssetCheckSpec("trainable", asset=asset_name, description="enough finished courses and rows, both outcomes on both sides of the split"),
        dg.AssetCheckSpec("roc_auc_above_floor", asset=asset_name, description="holdout ROC AUC at least the configured floor (the held-out courses were not used to choose the candidate)"),
        dg.AssetCheckSpec("not_worse_than_champion", asset=asset_name, description="not worse than the current default, beyond the margin, at early warning (weeks 1-4), on finished courses neither learned from"),
    ]


def _check_results(result: RetrainResult, settings: PipelineSettings) -> list[dg.AssetCheckResult]:
    overall = result.overall()
    auc = overall["roc_auc"]
    champion = result.champion or {}
    chosen_on = result.selection_overall() or {}
    return [
        dg.AssetCheckResult(
            check_name="trainable",
            passed=True,
            description=f"{result.training_rows} training rows; held out: {', '.join(result.holdout_courses)}",
        ),
        dg.AssetCheckResult(
            check_name="roc_auc_above_floor",
            passed=result.passed_floor,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"judged on the held-out courses; chosen on {result.selection_strategy}",
            metadata={
                "roc_auc": dg.MetadataValue.float(float(auc or 0.0)),
                # Beside it, what the choice saw: a gap between the two is the choice's optimism.
                "selection_roc_auc": dg.MetadataValue.float(float(chosen_on.get("roc_auc") or 0.0)),
                "early_weeks_roc_auc": dg.MetadataValue.float(float(result.early_auc() or 0.0)),
                "selection_early_weeks_roc_auc": dg.MetadataValue.float(float(result.selection_auc() or 0.0)),
                "floor": dg.MetadataValue.float(settings.auc_floor),
                "pr_auc": dg.MetadataValue.float(float(overall["pr_auc"] or 0.0)),
                "brier_score": dg.MetadataValue.float(float(overall["brier_score"] or 0.0)),
                "n_samples": dg.MetadataValue.int(overall["n_samples"]),
            },
        ),
        dg.AssetCheckResult(
            check_name="not_worse_than_champion",
            passed=result.passed_champion,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{champion['note']} ({champion.get('measure', 'not compared')})" if champion else "no default yet: nothing to compare with",
            metadata={
                "roc_auc": dg.MetadataValue.float(float(champion.get("challenger_roc_auc") or auc or 0.0)),
                "champion_version": dg.MetadataValue.int(int(champion.get("model_version") or 0)),
                "champion_roc_auc": dg.MetadataValue.float(float(champion.get("roc_auc") or 0.0)),
                "per_week": dg.MetadataValue.json({str(week): values for week, values in champion.get("per_week", {}).items()}),
                "compared_on": dg.MetadataValue.json(champion.get("compared_on", [])),
                "margin": dg.MetadataValue.float(settings.champion_margin),
            },
        ),
    ]


def _metadata(result: RetrainResult) -> dict:
    overall = result.overall()
    return {
        "trained": dg.MetadataValue.bool(True),
        "model_version": dg.MetadataValue.int(result.model_version),
        "chosen_candidate": dg.MetadataValue.text(result.chosen),
        "early_weeks_roc_auc": dg.MetadataValue.json({name: result.early_auc(name) for name in result.evaluations}),
        "selection_early_weeks_roc_auc": dg.MetadataValue.json({name: result.selection_auc(name) for name in result.evaluations}),
        "selected_on": dg.MetadataValue.json(list(result.selected_on)),
        "choice": dg.MetadataValue.md(choice_table(result)),
        "roc_auc_by_day_of_week": dg.MetadataValue.json({str(day): row for day, row in result.by_week_day.items()}),
        "promoted_to_default": dg.MetadataValue.bool(result.promoted),
        "roc_auc": dg.MetadataValue.float(float(overall["roc_auc"] or 0.0)),
        "pr_auc": dg.MetadataValue.float(float(overall["pr_auc"] or 0.0)),
        "brier_score": dg.MetadataValue.float(float(overall["brier_score"] or 0.0)),
        "holdout_rows": dg.MetadataValue.int(overall["n_samples"]),
        "training_rows": dg.MetadataValue.int(result.training_rows),
        "holdout_courses": dg.MetadataValue.json(list(result.holdout_courses)),
        "split": dg.MetadataValue.text(result.split_strategy),
        "per_week": dg.MetadataValue.md(per_week_table(result)),
        "against_baselines": dg.MetadataValue.md(overall_table(result)),
        "feature_importance": dg.MetadataValue.json(result.feature_importance),
        "calibration": dg.MetadataValue.json(result.calibration),
        "holdout_calibration_error": dg.MetadataValue.float(float(overall["calibration_error"] or 0.0)),
        "model_path": dg.MetadataValue.path(str(result.model_path)),
        "evaluated_model_path": dg.MetadataValue.path(str(result.evaluated_model_path)),
    }


def _model_asset(name: str, target: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name=GROUP, kinds={"catboost", "scikitlearn"}, deps=[training_data], check_specs=_gate_checks(name), description=description)
    def _asset(context: dg.AssetExecutionContext, database: DatabaseResource, settings: PipelineSettings) -> dg.MaterializeResult:
        request = RetrainRequest(
            target=target,
            model_name=name,
            models_dir=settings.models_path(),
            auc_floor=settings.auc_floor,
            champion_margin=settings.champion_margin,
        )
        engine = database.engine()
        seen = learnable_rows(engine)  # counted first: a row frozen meanwhile counts as unseen, and is tried again
        try:
            result = retrain(engine, request)
        except CannotTrain as reason:
            with engine.begin() as connection:  # the planner waits for new rows before trying this target again
                record_training_attempt(connection, name, seen, str(reason), utc_now())
            return _not_trained(str(reason))
        context.log.info(f"{name} v{result.model_version}: ROC AUC {result.overall()['roc_auc']:.3f}, promoted={result.promoted}")
        return dg.MaterializeResult(metadata=_metadata(result), check_results=_check_results(result, settings))

    return _asset


def _not_trained(reason: str) -> dg.MaterializeResult:
    """No model this time: the `trainable` check fails with the reason (which names the
    default that keeps serving), and nothing is registered."""
    untried = "no model was trained"
    return dg.MaterializeResult(
        metadata={"trained": dg.MetadataValue.bool(False), "reason": dg.MetadataValue.text(reason)},
        check_results=[
            dg.AssetCheckResult(check_name=name, passed=False, severity=dg.AssetCheckSeverity.WARN, description=why)
            for name, why in (("trainable", reason), ("roc_auc_above_floor", untried), ("not_worse_than_champion", untried))
        ],
    )


fail_risk_model = _model_asset(NIGHTLY_MODELS["fail"], "fail", "Probability a learner does not pass, from what is known on the day: the best candidate at early warning.")
dropout_risk_model = _model_asset(NIGHTLY_MODELS["dropout"], "dropout", "Probability a learner drops out (no activity in the last N days): the best candidate at early warning.")


class DomainModelConfig(dg.Config):
    """A model for a subset of courses: by organisation, or an explicit list."""

    model_name: str
    target: str = "fail"
    org: str | None = None
    course_ids: list[str] = []


@dg.op
def train_domain_model(context: dg.OpExecutionContext, config: DomainModelConfig, database: DatabaseResource, settings: PipelineSettings) -> None:
    """Train, evaluate and gate a domain model; when it passes, map its courses to it."""
    course_ids = list(config.course_ids)
    if config.org:
        with database.engine().connect() as connection:
            course_ids += course_ids_of_org(connection, config.org)
    if not course_ids:
        raise dg.Failure("a domain model needs `org` or `course_ids`")
    request = RetrainRequest(
        target=config.target,
        model_name=config.model_name,
        models_dir=settings.models_path(),
        auc_floor=settings.auc_floor,
        champion_margin=settings.champion_margin,
        domain=config.org or "custom",
        course_ids=sorted(set(course_ids)),
    )
    try:
        result = retrain(database.engine(), request)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    context.log.info(f"{config.model_name} v{result.model_version}: ROC AUC {result.overall()['roc_auc']}, mapped={result.promoted}")


@dg.job(description="Train a model for a subset of courses (by organisation or list) and map those courses to it.")
def train_domain_model_job():
    train_domain_model()


MODEL_ASSETS = [fail_risk_model, dropout_risk_model]
