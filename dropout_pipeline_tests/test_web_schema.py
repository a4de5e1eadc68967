"""A fuzzing run over the API's OpenAPI schema (schemathesis), over real HTTP: no answer is a
5xx and every answer matches the schema (status, content type, body), with an admin's
token (and, through schemathesis' auth check, without one). Bounded: a dozen examples per
operation, so the suite stays fast.

The schema is the app's own, built at collection (schemathesis' fixture-based loader does
not run on pytest 9); the test checks the served /openapi.json is that same document."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from dropout_pipeline.clock import Clock
from dropout_pipeline.web.app import create_app
from dropout_pipeline.web.settings import WebSettings
from dropout_pipeline_tests.web_support import running_app

OPENAPI = create_app(WebSettings(database_url="sqlite://", clock=Clock("UTC")), instance=None).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


@pytest.fixture(scope="module")
def served(web_world, tmp_path_factory):
    with running_app(web_world, "sqlite", tmp_path_factory.mktemp("fuzz")) as app:
        assert httpx.get(app["base"] + "/openapi.json").json() == OPENAPI
        yield app


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail_or_break_its_schema(case, served):
    case.call_and_validate(base_url=served["base"], headers={"Authorization": f"Bearer {served['tokens']['admin']}"})
