"""The API client against the simulator over real HTTP: contract, faults, limits."""

import time
from datetime import date

import pytest

from dropout_pipeline.simulator.server import DEFAULT_SESSION_ID, DEFAULT_TOKEN, Faults
from dropout_pipeline.source_api.client import ClientSettings, encode_course_id, run_sync
from dropout_pipeline.source_api.errors import AuthenticationError, BadResponseError, NotFoundError, TransientError
from dropout_pipeline_tests.conftest import TODAY, course_ids


def settings(simulator, **overrides) -> ClientSettings:
    values = dict(
        mooc_url=simulator.mooc_url, mooc_session_id=DEFAULT_SESSION_ID, h5p_url=simulator.h5p_url, h5p_token=DEFAULT_TOKEN,
        backoff_initial_seconds=0.01, backoff_max_seconds=0.05,
    )
    values.update(overrides)
    return ClientSettings(**values)


def first_running_course(simulator) -> str:
    return course_ids(simulator)[1][0]


def test_course_ids_are_percent_encoded_in_paths():
    assert encode_course_id("course-v1:DHQG-HCM+FM101+2025_S2") == "course-v1%3ADHQG-HCM%2BFM101%2B2025_S2"


def test_pagination_follows_next_until_the_last_page(simulator):
    course = first_running_course(simulator)
    one_page, stats_one = run_sync(lambda api: api.mooc_list("enrollments", course), settings(simulator), TODAY)
    paged, stats_many = run_sync(lambda api: api.mooc_list("enrollments", course), settings(simulator, page_size=7), TODAY)
    assert [r.user_id for r in paged] == [r.user_id for r in one_page]
    assert stats_one.calls == 1
    assert stats_many.calls == -(-len(one_page) // 7) > 1


def test_wrong_session_cookie_fails_at_once_naming_api_endpoint_and_status_not_the_secret(simulator):
    secret = "wrong-secret-do-not-print"
    with pytest.raises(AuthenticationError) as caught:
        run_sync(lambda api: api.courses(), settings(simulator, mooc_session_id=secret))
    message = str(caught.value)
    assert "MOOC API /mooc/courses/" in message and "401" in message and "MOOC_API_SESSIONID" in message
    assert secret not in message


def test_wrong_bearer_token_fails_without_retrying(simulator):
    course = first_running_course(simulator)
    user_id = run_sync(lambda api: api.mooc_list("enrollments", course), settings(simulator), TODAY)[0][0].user_id
    started = simulator.state.requests_served
    with pytest.raises(AuthenticationError, match="H5P API .* 401 Unauthorized: check H5P_API_TOKEN"):
        run_sync(lambda api: api.h5p_per_learner("scores", course, [user_id]), settings(simulator, h5p_token="nope"))
    assert simulator.state.requests_served == started  # refused before any retry or fault logic


def test_unknown_course_is_a_clear_404(simulator):
    with pytest.raises(NotFoundError, match="404 Not Found: Course course-v1:NOPE\\+X\\+1 not found"):
        run_sync(lambda api: api.mooc_list("grades", "course-v1:NOPE+X+1"), settings(simulator))


def test_transient_503s_are_retried_until_they_succeed(simulator):
    simulator.state.set_faults(Faults(error_rate=0.3))
    course = first_running_course(simulator)
    learners, _ = run_sync(lambda api: api.mooc_list("enrollments", course), settings(simulator, page_size=5), TODAY)
    records, stats = run_sync(lambda api: api.h5p_per_learner("dashboard", course, [x.user_id for x in learners]), settings(simulator, max_retries=10), TODAY)
    assert len(records) == len(learners)
    assert stats.retries > 0 and stats.calls == len(learners) + stats.retries


def test_persistent_503s_give_up_after_the_retry_budget(simulator):
    simulator.state.set_faults(Faults(error_rate=1.0))
    with pytest.raises(TransientError, match="503"):
        run_sync(lambda api: api.courses(), settings(simulator, max_retries=2))


def test_429_waits_for_retry_after(simulator):
    simulator.state.set_faults(Faults(rate_limit_rate=1.0, retry_after_seconds=0.4))
    started = time.monotonic()
    with pytest.raises(TransientError, match="429"):
        run_sync(lambda api: api.courses(), settings(simulator, max_retries=2))
    assert time.monotonic() - started >= 0.8  # two waits of Retry-After, not the 10 ms backoff


def test_timeouts_are_transient_and_retried(simulator):
    simulator.state.set_faults(Faults(mooc_latency_ms=300))
    with pytest.raises(TransientError, match="TimeoutError") as caught:
        run_sync(lambda api: api.courses(), settings(simulator, timeout_seconds=0.1, max_retries=1))
    assert "courses" in str(caught.value)


def test_body_that_is_not_json_fails_naming_the_endpoint(simulator):
    simulator.state.set_faults(Faults(malformed_rate=1.0, malformed_kind="json"))
    with pytest.raises(BadResponseError, match="MOOC API /mooc/courses/: body is not valid JSON"):
        run_sync(lambda api: api.courses(), settings(simulator))


def test_record_missing_a_required_field_fails_naming_it(simulator):
    simulator.state.set_faults(Faults(malformed_rate=1.0, malformed_kind="field"))
    course = first_running_course(simulator)
    with pytest.raises(BadResponseError, match=r"record 0 does not follow the contract: user_id: Field required"):
        run_sync(lambda api: api.mooc_list("grades", course), settings(simulator), TODAY)


def test_h5p_calls_run_concurrently_up_to_the_limit_and_no_further(simulator):
    simulator.state.set_faults(Faults(h5p_latency_ms=30))
    simulator.state.h5p_peak_in_flight = 0
    course = first_running_course(simulator)
    learners, _ = run_sync(lambda api: api.mooc_list("enrollments", course), settings(simulator), TODAY)
    run_sync(lambda api: api.h5p_per_learner("scores", course, [x.user_id for x in learners]), settings(simulator, concurrency=5), TODAY)
    assert simulator.state.h5p_peak_in_flight == 5


def test_as_of_returns_the_state_on_that_date(simulator):
    course = first_running_course(simulator)
    early, _ = run_sync(lambda api: api.mooc_list("progress", course), settings(simulator), date(2026, 9, 20))
    late, _ = run_sync(lambda api: api.mooc_list("progress", course), settings(simulator), TODAY)
    early_blocks = {r.user_id: r.completed_blocks for r in early}
    assert sum(early_blocks.values()) < sum(r.completed_blocks for r in late)
    assert all(early_blocks[r.user_id] <= r.completed_blocks for r in late if r.user_id in early_blocks)
    assert len(early) <= len(late)  # late enrolments appear only once they happened
