"""Ingestion throughput: one course of 2,000 learners, 50 ms added to every H5P call.

Pulls the three H5P tables (one call per learner and endpoint, validated and turned into
rows exactly as the assets do) at concurrency 32, then a sequential client on the first
100 learners. The ratio is ideal time (calls x latency / concurrency) over measured time:
1.0 means the client is limited only by the remote latency. Target: >= 0.7 at 32.

    .venv/bin/python benchmarks/ingest.py
"""

from __future__ import annotations

import argparse
import time

from dropout_pipeline.ingestion.pull import pull_catalog, pull_h5p_tables, pull_mooc_table
from dropout_pipeline.simulator.runner import simulator_process
from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN
from dropout_pipeline.source_api.client import ClientSettings

H5P_TABLE_GROUPS = (("h5p_scores", "h5p_scores_summary"), ("video_progress", "video_progress_summary"), ("dashboard_summary",))


def pull_h5p(settings: ClientSettings, course_id: str, user_ids: list[int]) -> tuple[int, float]:
    started = time.perf_counter()
    calls = 0
    for tables in H5P_TABLE_GROUPS:
        calls += pull_h5p_tables(settings, tables, course_id, user_ids).stats.calls
    return calls, time.perf_counter() - started


def report(label: str, calls: int, seconds: float, latency: float, concurrency: int) -> None:
    ideal = calls * latency / concurrency
    print(f"{label:<28} {calls:>6} calls  {seconds:7.2f} s  {calls / seconds:7.1f} calls/s  ideal {ideal:6.2f} s  ratio {ideal / seconds:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    simulator_args = [
        "--past-semesters", "0", "--running-courses", "1", "--min-learners", str(args.learners),
        "--max-learners", str(args.learners), "--h5p-latency-ms", str(args.latency_ms),
    ]
    with simulator_process(simulator_args) as simulator:
        settings = ClientSettings(simulator.mooc_url, DEFAULT_SESSION_ID, simulator.h5p_url, DEFAULT_TOKEN, concurrency=args.concurrency)
        courses, _ = pull_catalog(settings)
        course_id = courses[0].course_id
        user_ids = [row["user_id"] for row in pull_mooc_table(settings, "enrollments", course_id).tables["enrollments"]]
        pull_h5p(settings, course_id, user_ids[:50])  # warm the simulator's cache of this course
        print(f"course {course_id}: {len(user_ids)} learners enrolled today, {args.latency_ms:g} ms per H5P call")
        calls, seconds = pull_h5p(settings, course_id, user_ids)
        report(f"concurrency {args.concurrency}", calls, seconds, args.latency_ms / 1000, args.concurrency)
        sequential = ClientSettings(simulator.mooc_url, DEFAULT_SESSION_ID, simulator.h5p_url, DEFAULT_TOKEN, concurrency=1)
        calls, seconds = pull_h5p(sequential, course_id, user_ids[:100])
        report("sequential, first 100", calls, seconds, args.latency_ms / 1000, 1)


if __name__ == "__main__":
    main()
