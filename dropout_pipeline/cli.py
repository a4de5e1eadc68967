"""The `dropout-pipeline` command: simulate, migrate, demo, run, status, serve, token, feature-dictionary."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from pathlib import Path

DEFAULT_DATA_DIR = Path("data")
FEATURE_DICTIONARY_PATH = Path("docs/feature_dictionary.md")


def _simulate(args: argparse.Namespace) -> int:
    from dropout_pipeline.simulator.runner import serve
    from dropout_pipeline.simulator.server import Faults, SimulatorState
    from dropout_pipeline.simulator.world import PLATFORM_TZ, profile_settings

    shape = ("past_semesters", "courses_per_semester", "running_courses", "min_learners", "max_learners", "rolling_courses", "rolling_span_days")
    world = profile_settings(
        args.profile,
        seed=args.seed,
        today=args.today or datetime.now(PLATFORM_TZ).date(),
        **{name: getattr(args, name) for name in shape if getattr(args, name) is not None},  # unset: the profile's own
    )
    faults = Faults(
        h5p_latency_ms=args.h5p_latency_ms,
        mooc_latency_ms=args.mooc_latency_ms,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        retry_after_seconds=args.retry_after_seconds,
        malformed_rate=args.malformed_rate,
    )
    state = SimulatorState(
        world=world,
        session_id=args.session_id,
        token=args.token,
        faults=faults,
        new_course_after_seconds=args.new_course_after_seconds,
    )
    print(f"simulator: MOOC_API_URL=http://{args.host}:{args.port}/mooc H5P_API_URL=http://{args.host}:{args.port}/h5p", flush=True)
    serve(state, args.host, args.port)
    return 0


PROFILE_HELP = (
    "default: an easy platform whose outcomes follow behaviour closely; realistic: loose links, heavy tails, "
    "withdrawals, courses of 30 to 5,000 learners without H5P or videos, few finished courses"
)


def _add_simulate(commands) -> None:
    from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
    from dropout_pipeline.simulator.world import PROFILES

    p = commands.add_parser("simulate", help="serve the MOOC and H5P APIs of a simulated platform on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--today", type=date.fromisoformat, default=None, help="the simulator's clock (default: today on the platform, UTC+7)")
    p.add_argument("--profile", choices=PROFILES, default="default", help=PROFILE_HELP)
    p.add_argument("--past-semesters", type=int, help="finished semesters (default 3; realistic: 1)")
    p.add_argument("--courses-per-semester", type=int, help="default 2; realistic: 3")
    p.add_argument("--running-courses", type=int, help="default 2")
    p.add_argument("--min-learners", type=int, help="default 200; realistic: 30")
    p.add_argument("--max-learners", type=int, help="default 600; realistic: 5000")
    p.add_argument("--rolling-courses", type=int, help="courses starting one after another around --today (default 0)")
    p.add_argument("--rolling-span-days", type=int, help="the days over which the rolling courses start and end (default 120)")
    p.add_argument("--session-id", default=DEFAULT_SESSION_ID, help="the MOOC session cookie it accepts")
    p.add_argument("--token", default=DEFAULT_TOKEN, help="the H5P bearer token it accepts")
    p.add_argument("--h5p-latency-ms", type=float, default=0.0)
    p.add_argument("--mooc-latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 503")
    p.add_argument("--rate-limit-rate", type=float, default=0.0, help="share of requests answered 429")
    p.add_argument("--retry-after-seconds", type=float, default=1.0)
    p.add_argument("--malformed-rate", type=float, default=0.0, help="share of bodies that are not valid JSON")
    p.add_argument("--new-course-after-seconds", type=float, default=None, help="publish a new course this long after start")
    p.set_defaults(handler=_simulate)


def _instance(data_dir: Path):
    """Dagster's instance: DAGSTER_HOME when set, else a folder in the data directory."""
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        home = (data_dir / "dagster_home").resolve()
        home.mkdir(parents=True, exist_ok=True)
        config = home / "dagster.yaml"
        if not config.exists():  # local SQLite storage for one person; production uses ./dagster.yaml
            config.write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _cycle(resources: dict, data_dir: Path, db_url: str, verbose: bool) -> int:
    """Today's plan, carried out now; exit status 1 when any step failed."""
    import dagster as dg

    from dropout_pipeline.cycle import Progress, run_day
    from dropout_pipeline.definitions import build_definitions
    from dropout_pipeline.lifecycle.facts import platform_catalogue
    from dropout_pipeline.storage.database import engine_for
    from dropout_pipeline.summary import render_summary

    engine = engine_for(db_url)
    with dg.build_resources({key: resources[key] for key in ("source_api", "clock", "settings")}) as resolved:  # EnvVars read
        settings, clock, grace_days = resolved.source_api.client_settings(), resolved.clock, resolved.settings.freeze_grace_days
    with _instance(data_dir) as instance:
        read_catalogue = lambda: platform_catalogue(settings, clock.as_of())  # noqa: E731
        report = run_day(
            build_definitions(resources), instance, engine, read_catalogue, clock.clock().today(), Progress(), verbose, grace_days=grace_days
        )
    print(render_summary(engine, report), flush=True)
    return 1 if report.failures else 0


def _shown_url(db_url: str) -> str:
    import sqlalchemy as sa

    return "$DROPOUT_DB_URL" if sa.make_url(db_url).password else db_url  # a password is never printed


def _ui_hint(db_url: str, extra_env: str = "") -> str:
    shown = _shown_url(db_url)
    return (
        "\nSee every materialization, check, schedule and sensor in the Dagster UI, on the same storage:\n"
        f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} DROPOUT_DB_URL=\"{shown}\" {extra_env}\\\n"
        "    .venv/bin/dagster dev -w workspace.yaml      # then open http://127.0.0.1:3000\n"
    )


def _demo(args: argparse.Namespace) -> int:
    from dropout_pipeline.defs.resources import (
        AlertWebhookResource,
        ClockResource,
        DatabaseResource,
        PipelineSettings,
        SourceApiResource,
        database_url,
        product_timezone,
    )
    from dropout_pipeline.simulator.runner import simulator_process
    from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
    data_dir = Path(args.data_dir)
    db_url = database_url(data_dir)
    print(f"Database: {db_url.split('@')[-1]}   (set DROPOUT_DB_URL to use another)", flush=True)
    print("Starting the built-in simulator of a MOOC + H5P platform on loopback...", flush=True)
    clock = ClockResource(timezone=product_timezone())
    with simulator_process(["--seed", str(args.seed), "--profile", args.profile, "--today", clock.clock().today().isoformat()]) as simulator:
        resources = {
            "database": DatabaseResource(url=db_url),
            "source_api": SourceApiResource(
                mooc_url=simulator.mooc_url,
                mooc_session_id=DEFAULT_SESSION_ID,
                h5p_url=simulator.h5p_url,
                h5p_token=DEFAULT_TOKEN,
                concurrency=32,
            ),
            "clock": clock,
            "settings": PipelineSettings(models_dir=str(data_dir / "models")),
            "alert_webhook": AlertWebhookResource(),
        }
        status = _cycle(resources, data_dir, db_url, args.verbose)
    print(
        _ui_hint(
            db_url,
            "MOOC_API_URL=http://127.0.0.1:8765/mooc MOOC_API_SESSIONID=simulator-session "
            "H5P_API_URL=http://127.0.0.1:8765/h5p H5P_API_TOKEN=simulator-token ",
        )
        + "  (the sensor needs the simulator running too: .venv/bin/dropout-pipeline simulate)"
    )
    print(_web_hint(db_url, data_dir))
    return status


def _web_hint(db_url: str, data_dir: Path) -> str:
    """How to open the web app on this data, with an admin token made for it (shown once)."""
    from dropout_pipeline.storage.database import engine_for
    from dropout_pipeline.storage.web_tables import create_token
    from dropout_pipeline.summary import render_web_hint
    from dropout_pipeline.clock import utc_now

    with engine_for(db_url).begin() as connection:
        _token_id, secret = create_token(connection, f"demo admin {utc_now():%Y-%m-%d %H:%M}", "admin", utc_now())
    return render_web_hint(_shown_url(db_url), os.environ["DAGSTER_HOME"], secret, str(data_dir))


def _run(args: argparse.Namespace) -> int:
    from dropout_pipeline.defs.resources import build_resources, database_url

    missing = [name for name in ("MOOC_API_URL", "MOOC_API_SESSIONID", "H5P_API_URL", "H5P_API_TOKEN") if not os.environ.get(name)]
    if missing:
        print(f"dropout-pipeline run: set {', '.join(missing)} (see README, 'Point it at your platform')", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir)
    db_url = database_url(data_dir)
    status = _cycle(build_resources(data_dir), data_dir, db_url, args.verbose)
    print(_ui_hint(db_url))
    return status


def _status(args: argparse.Namespace) -> int:
    import dagster as dg

    from dropout_pipeline.defs.resources import build_resources, database_url, product_timezone
    from dropout_pipeline.lifecycle.facts import catalogue_from_database
    from dropout_pipeline.lifecycle.runs import plan_now
    from dropout_pipeline.lifecycle.status import render_status, status_rows
    from dropout_pipeline.storage.database import engine_for

    data_dir = Path(args.data_dir)
    engine = engine_for(database_url(data_dir))
    resources = build_resources()
    with dg.build_resources({key: resources[key] for key in ("clock", "settings")}) as resolved:  # EnvVars read
        day, grace_days = resolved.clock.clock().today(), resolved.settings.freeze_grace_days
    with _instance(data_dir) as instance, engine.connect() as connection:
        plan = plan_now(instance, engine, catalogue_from_database(connection), day, grace_days)
        print(render_status(plan, status_rows(connection, plan), product_timezone()))
    return 0


def _serve(args: argparse.Namespace) -> int:
    """The web app on uvicorn. With --workers above 1, each worker process builds the app
    from the environment (DROPOUT_DB_URL and DAGSTER_HOME, set here for them)."""
    import uvicorn

    from dropout_pipeline.web.app import create_app
    from dropout_pipeline.web.settings import settings_from_environment

    data_dir = Path(args.data_dir)
    settings = settings_from_environment(data_dir, args.host, args.port)
    print(f"Web app on {settings.base_url}/ (API {settings.base_url}/api/v1, docs {settings.base_url}/docs), "
          f"database {_shown_url(settings.database_url).split('@')[-1]}", flush=True)
    with _instance(data_dir) as instance:
        if args.workers > 1:
            os.environ["DROPOUT_DB_URL"] = settings.database_url  # what each worker's factory reads
            uvicorn.run("dropout_pipeline.web.app:app_from_environment", factory=True, host=args.host, port=args.port,
                        workers=args.workers, log_level=args.log_level)
        else:
            uvicorn.run(create_app(settings, instance), host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _token(args: argparse.Namespace) -> int:
    from dropout_pipeline.defs.resources import database_url
    from dropout_pipeline.storage import schema
    from dropout_pipeline.storage.database import engine_for
    from dropout_pipeline.storage.web_tables import create_token, list_tokens, revoke_token
    from dropout_pipeline.clock import utc_now

    import sqlalchemy as sa

    engine = engine_for(database_url(Path(args.data_dir)))
    if args.token_command == "list":
        with engine.connect() as connection:
            for row in list_tokens(connection):
                state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "valid"
                print(f"{row['id']:>4}  {row['role']:<7}  {row['name']:<30}  {', '.join(row['scope']) or 'every course'}  ({state})")
        return 0
    if args.token_command == "revoke":
        with engine.begin() as connection:
            done = revoke_token(connection, args.token_id, utc_now())
        print(f"token {args.token_id} revoked, its sessions ended" if done else f"no valid token {args.token_id}")
        return 0 if done else 1
    try:
        with engine.begin() as connection:
            token_id, secret = create_token(connection, args.name, args.role, utc_now(), args.course or (), args.org or ())
            known = set(connection.execute(sa.select(schema.courses.c.course_id)).scalars())
            orgs = set(connection.execute(sa.select(schema.courses.c.org)).scalars())
    except ValueError as refused:
        print(f"dropout-pipeline token create: {refused}", file=sys.stderr)
        return 2
    scope = ", ".join([f"course {c}" for c in args.course or ()] + [f"org {o}" for o in args.org or ()]) or "every course"
    print(f"Token {token_id} for {args.name!r}: {args.role}, {scope}. It is shown this once (only its hash is stored):")
    print(f"  {secret}")
    print("Send it as 'Authorization: Bearer <token>' to /api/v1, or paste it into the login page.")
    for course_id in [c for c in args.course or () if c not in known]:
        print(f"note: no course {course_id} is stored yet; the token sees it once it is", file=sys.stderr)
    for org in [o for o in args.org or () if o not in orgs]:
        print(f"note: no course of organisation {org} is stored yet", file=sys.stderr)
    return 0


def _add_web_commands(commands) -> None:
    from dropout_pipeline.web.settings import DEFAULT_HOST, DEFAULT_PORT

    serve = commands.add_parser("serve", help="the teachers' and admins' web app and API (FastAPI on uvicorn)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    serve.set_defaults(handler=_serve)
    token = commands.add_parser("token", help="bearer tokens for the web app: create (printed once), list, revoke")
    token.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="a new token, printed once")
    create.add_argument("--role", choices=["teacher", "admin"], required=True)
    create.add_argument("--course", action="append", help="a course the teacher sees (repeatable)")
    create.add_argument("--org", action="append", help="an organisation whose courses the teacher sees (repeatable)")
    create.add_argument("--name", required=True, help="who holds it: shown beside their feedback")
    actions.add_parser("list", help="every token: id, role, holder, scope (never a secret)")
    revoke = actions.add_parser("revoke", help="revoke a token and end its sessions")
    revoke.add_argument("token_id", type=int)
    token.set_defaults(handler=_token)


def _migrate(_args: argparse.Namespace) -> int:
    from dropout_pipeline.defs.resources import database_url
    from dropout_pipeline.storage.database import create_db_engine, upgrade_schema

    url = database_url()
    upgrade_schema(create_db_engine(url))
    print(f"schema is up to date on {url.split('@')[-1]}")
    return 0


def _feature_dictionary(args: argparse.Namespace) -> int:
    from dropout_pipeline.features.dictionary import feature_dictionary_markdown

    FEATURE_DICTIONARY_PATH.parent.mkdir(parents=True, exist_ok=True)
    FEATURE_DICTIONARY_PATH.write_text(feature_dictionary_markdown())
    print(f"wrote {FEATURE_DICTIONARY_PATH}")
    return 0


def _add_commands(commands) -> None:
    from dropout_pipeline.simulator.world import PROFILES

    demo = commands.add_parser("demo", help="the main job on the embedded default: simulator + SQLite, ingest to predictions, summary")
    demo.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--profile", choices=PROFILES, default="default", help=f"the simulator's platform: {PROFILE_HELP}")
    demo.add_argument("--verbose", action="store_true", help="print Dagster's DEBUG event log too")
    demo.set_defaults(handler=_demo)
    run = commands.add_parser("run", help="what the daemon would do today, now, against your platform (MOOC_API_URL, H5P_API_URL, secrets)")
    run.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    run.add_argument("--verbose", action="store_true", help="print Dagster's DEBUG event log too")
    run.set_defaults(handler=_run)
    status = commands.add_parser("status", help="every course: state, last refresh, frozen rows, latest prediction, model, next step")
    status.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    status.set_defaults(handler=_status)
    commands.add_parser("migrate", help="apply the database migrations to DROPOUT_DB_URL").set_defaults(handler=_migrate)
    commands.add_parser("feature-dictionary", help="regenerate docs/feature_dictionary.md").set_defaults(handler=_feature_dictionary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dropout-pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True)
    _add_simulate(commands)
    _add_commands(commands)
    _add_web_commands(commands)
    from dropout_pipeline.legacy.cli import add_legacy_commands

    add_legacy_commands(commands)  # legacy import
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
