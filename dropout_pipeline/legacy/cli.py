"""`dropout-pipeline legacy import --source <URL> [--dry-run]`: the V1 import from the command line.

Exit status 0 when the import (or the dry run) verified with no unexplained difference,
1 when the verification found one (everything rolled back), 2 when the source cannot be
imported (unreachable, missing table or column, another version): nothing was written.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_DATA_DIR = "data"


def _import(args: argparse.Namespace) -> int:
    from dropout_pipeline.defs.resources import PipelineSettings, database_url
    from dropout_pipeline.legacy.contract import LegacySourceError
    from dropout_pipeline.legacy.importer import UnexplainedDifferences, import_v1
    from dropout_pipeline.predictions.score import RiskLevels
    from dropout_pipeline.storage.database import create_db_engine, engine_for
    from pathlib import Path

    import sqlalchemy as sa

    url = database_url(Path(args.data_dir))
    # A dry run writes nothing, not even the schema: the target is read as it is, and a
    # SQLite file that does not exist yet is not created (an empty database stands for it).
    if args.dry_run and url.startswith("sqlite") and not Path(sa.make_url(url).database or "").exists():
        print(f"{sa.make_url(url).database} does not exist yet: the dry run compares against an empty database")
        url = "sqlite://"
    target = create_db_engine(url) if args.dry_run else engine_for(url)
    settings = PipelineSettings()
    levels = RiskLevels(settings.high_risk_from, settings.medium_risk_from)
    try:
        report = import_v1(args.source, target, dry_run=args.dry_run, levels=levels)
    except LegacySourceError as refused:
        print(f"dropout-pipeline legacy import: nothing written: {refused}", file=sys.stderr)
        return 2
    except UnexplainedDifferences as failed:
        print(failed.report.render())
        print(f"dropout-pipeline legacy import: {failed}", file=sys.stderr)
        return 1
    finally:
        if args.dry_run:
            target.dispose()
    print(report.render())
    return 0


def add_legacy_commands(commands) -> None:
    legacy = commands.add_parser("legacy", help="bring a legacy V1 installation across (its MySQL/MariaDB database)")
    actions = legacy.add_subparsers(dest="legacy_command", required=True)
    imp = actions.add_parser("import", help="import a V1 database: repaired, quarantined where it cannot be, verified, idempotent")
    imp.add_argument("--source", required=True, help="SQLAlchemy URL of the V1 database (mysql+pymysql://user:password@host/db); only read")
    imp.add_argument("--dry-run", action="store_true", help="print the same report and write nothing")
    imp.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="the product's data folder when DROPOUT_DB_URL is not set")
    imp.set_defaults(handler=_import)
