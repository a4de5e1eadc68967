"""The `dropout-pipeline` command: simulate, migrate, demo, run, feature-dictionary."""

from __future__ import annotations

import argparse
import sys
from datetime import date


def _simulate(args: argparse.Namespace) -> int:
    from dropout_pipeline.simulator.runner import serve
    from dropout_pipeline.simulator.server import Faults, SimulatorState
    from dropout_pipeline.simulator.world import WorldSettings

    world = WorldSettings(
        seed=args.seed,
        today=args.today or date.today(),
        past_semesters=args.past_semesters,
        courses_per_semester=args.courses_per_semester,
        running_courses=args.running_courses,
        min_learners=args.min_learners,
        max_learners=args.max_learners,
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


def _add_simulate(commands) -> None:
    from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN

    p = commands.add_parser("simulate", help="serve the MOOC and H5P APIs of a simulated platform on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--today", type=date.fromisoformat, default=None, help="the simulator's clock (default: today)")
    p.add_argument("--past-semesters", type=int, default=3)
    p.add_argument("--courses-per-semester", type=int, default=2)
    p.add_argument("--running-courses", type=int, default=2)
    p.add_argument("--min-learners", type=int, default=200)
    p.add_argument("--max-learners", type=int, default=600)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dropout-pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True)
    _add_simulate(commands)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
