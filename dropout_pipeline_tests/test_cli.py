"""`dropout-pipeline run` and `status`: what the daemon would do today, against any platform
that follows the contract; quiet progress, a summary, and an exit status that tells."""

import os
import socket
import subprocess
import sys
from datetime import timedelta

from dropout_pipeline.simulator.server import Faults
from dropout_pipeline_tests.conftest import TODAY, course_ids


def run_cli(args, env, cwd):
    command = [os.path.join(os.path.dirname(sys.executable), "dropout-pipeline"), *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_run_refuses_to_start_without_the_platform_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOC_", "H5P_"))}
    done = run_cli(["run"], env, tmp_path)
    assert done.returncode == 2
    assert "set MOOC_API_URL, MOOC_API_SESSIONID, H5P_API_URL, H5P_API_TOKEN" in done.stderr


def test_a_failed_course_fails_the_exit_status_not_the_others_and_run_tries_it_again(simulator, tmp_path):
    finished, running = course_ids(simulator)
    env = {
        **os.environ,
        "DROPOUT_DB_URL": f"sqlite:///{tmp_path / 'platform.db'}",
        "DAGSTER_HOME": str(tmp_path / "home"),
        "DROPOUT_MODELS_DIR": str(tmp_path / "models"),
        "MOOC_API_URL": simulator.mooc_url,
        "MOOC_API_SESSIONID": simulator.state.session_id,
        "H5P_API_URL": simulator.h5p_url,
        "H5P_API_TOKEN": simulator.state.token,
        "SOURCE_API_MAX_RETRIES": "0",
        "DROPOUT_TODAY": TODAY.isoformat(),
    }
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # The running course's grades answer 503 for now; nothing else does.
    simulator.state.set_faults(Faults(error_rate=1.0, path_prefix=f"/mooc/export/student-grades/{running[0]}/"))

    first = run_cli(["run", "--data-dir", str(tmp_path)], env, tmp_path)
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"This cycle: {len(finished)} courses frozen, 0 courses predicted, 1 failed." in first.stdout
    assert "fail_risk_model v1: ROC AUC" in first.stdout and "now the default" in first.stdout
    failures = first.stdout.split("Failures:")[1]
    assert f"course_refresh {running[0]}: mooc_grades: MOOC API /mooc/export/student-grades/" in failures and "503" in failures
    assert "DEBUG" not in first.stdout + first.stderr and len(first.stdout.splitlines()) < 80
    status = run_cli(["status", "--data-dir", str(tmp_path)], env, tmp_path)
    assert status.returncode == 0
    lines = {line.split()[0]: line for line in status.stdout.splitlines() if line.startswith("course-v1:")}
    assert set(lines) == set(finished + running)
    assert " running " in lines[running[0]] and "refresh failed today: the daemon tries again tomorrow" in lines[running[0]]
    assert all(" finished " in lines[c] and "  frozen: " in lines[c] for c in finished)

    simulator.state.set_faults(Faults())  # fixed: a person runs it again the same day
    again = run_cli(["run", "--data-dir", str(tmp_path)], env, tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "This cycle: 0 courses frozen, 1 course predicted, 0 failed. Retrain: not needed" in again.stdout
    assert f"{running[0]}: " in again.stdout.split("Most at-risk learners")[1]
    status = run_cli(["status", "--data-dir", str(tmp_path)], env, tmp_path)
    assert "predicted today" in next(line for line in status.stdout.splitlines() if line.startswith(running[0]))

    # The next day the platform is down: the run says so, does what needs no platform, and fails.
    down = {**env, "MOOC_API_URL": f"http://127.0.0.1:{closed_port()}/mooc", "DROPOUT_TODAY": (TODAY + timedelta(days=1)).isoformat()}
    unreachable = run_cli(["run", "--data-dir", str(tmp_path)], down, tmp_path)
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr, unreachable.stderr[-3000:]
    assert "the platform cannot be reached" in unreachable.stdout and "only the retrain, planned from the courses stored" in unreachable.stdout
    assert "discover_courses" in unreachable.stdout.split("Failures:")[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_setting_of_an_earlier_release_is_refused_by_its_new_name_not_silently_ignored(tmp_path):
    env = {**os.environ, "RETRAIN_TIMEZONE": "Europe/Paris", "DAGSTER_HOME": str(tmp_path)}
    done = run_cli(["status", "--data-dir", str(tmp_path)], env, tmp_path)
    assert done.returncode != 0
    assert "renamed settings in the environment: RETRAIN_TIMEZONE is now DROPOUT_TIMEZONE" in done.stderr.splitlines()[-1]
