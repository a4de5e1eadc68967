"""The legacy V1 import as Dagster assets (group `legacy`) and a job the UI can launch.

The V1 database's URL, with its password, is read from an environment variable when the
run starts (LEGACY_V1_DB_URL unless the run config names another): run config is shown in
the UI, a secret never goes there, and every message shows the URL with its password hidden.

- `legacy_v1_import`: reads, repairs, quarantines, writes and verifies (legacy/importer.py);
  its metadata is the report. `dry_run: true` in the run config writes nothing.
- `legacy_v1_verification`: afterwards, source and target compared again, per course and
  table, without writing; fails on any difference it cannot explain.
"""

import os

import dagster as dg

from dropout_pipeline.defs.resources import DatabaseResource, PipelineSettings
from dropout_pipeline.legacy.contract import LegacySourceError
from dropout_pipeline.legacy.importer import UnexplainedDifferences, import_v1
from dropout_pipeline.legacy.report import ImportReport
from dropout_pipeline.predictions.score import RiskLevels

GROUP = "legacy"
DEFAULT_URL_VARIABLE = "LEGACY_V1_DB_URL"


class LegacyImportConfig(dg.Config):
    source_url_variable: str = DEFAULT_URL_VARIABLE  # the environment variable holding the V1 database's URL
    dry_run: bool = False


def _source_url(config: LegacyImportConfig) -> str:
    url = os.environ.get(config.source_url_variable)
    if not url:
        raise dg.Failure(f"set {config.source_url_variable} to the V1 database's SQLAlchemy URL (mysql+pymysql://user:password@host/db)")
    return url


def _metadata(report: ImportReport) -> dict[str, dg.MetadataValue]:
    summary = report.as_dict()
    return {
        "report": dg.MetadataValue.md(f"```\n{report.render()}\n```"),
        "summary": dg.MetadataValue.json(summary),
        "dagster/row_count": dg.MetadataValue.int(sum(report.written.values())),
        "quarantined": dg.MetadataValue.int(len(report.quarantine)),
        "repaired_values": dg.MetadataValue.int(sum(report.repairs.values())),
        "checks": dg.MetadataValue.int(len(report.checks)),
        "unexplained_differences": dg.MetadataValue.int(len(report.unexplained)),
        "dry_run": dg.MetadataValue.bool(report.dry_run),
    }


def _run(config: LegacyImportConfig, database: DatabaseResource, settings: PipelineSettings, dry_run: bool) -> ImportReport:
    levels = RiskLevels(settings.high_risk_from, settings.medium_risk_from)
    try:
        return import_v1(_source_url(config), database.engine(), dry_run=dry_run, levels=levels)
    except LegacySourceError as refused:
        raise dg.Failure(f"nothing written: {refused}") from None
    except UnexplainedDifferences as failed:
        raise dg.Failure(str(failed), metadata=_metadata(failed.report)) from None


@dg.asset(group_name=GROUP, kinds={"sql", "mysql"})
def legacy_v1_import(context: dg.AssetExecutionContext, config: LegacyImportConfig, database: DatabaseResource,
                     settings: PipelineSettings) -> dg.MaterializeResult:
    """A legacy V1 database brought into the product's tables: predictions (model legacy-v1),
    end-of-course training rows (never learned from), features of running courses, the side
    tables; repaired, quarantined where it cannot be, verified per course and table."""
    report = _run(config, database, settings, config.dry_run)
    context.log.info(report.render())
    return dg.MaterializeResult(metadata=_metadata(report))


@dg.asset(group_name=GROUP, kinds={"sql"}, deps=[legacy_v1_import])
def legacy_v1_verification(context: dg.AssetExecutionContext, config: LegacyImportConfig, database: DatabaseResource,
                           settings: PipelineSettings) -> dg.MaterializeResult:
    """The source and the product's tables compared again after the import, without writing."""
    report = _run(config, database, settings, dry_run=True)
    if report.unexplained:
        raise dg.Failure(f"{len(report.unexplained)} unexplained differences between the V1 database and the product's tables",
                         metadata=_metadata(report))
    context.log.info(report.render())
    return dg.MaterializeResult(metadata=_metadata(report))


legacy_import_job = dg.define_asset_job(
    "legacy_import", selection=dg.AssetSelection.groups(GROUP),
    description=f"Import a legacy V1 database (URL in ${DEFAULT_URL_VARIABLE}) and verify it; dry_run in the config writes nothing.",
)

LEGACY_ASSETS = [legacy_v1_import, legacy_v1_verification]
