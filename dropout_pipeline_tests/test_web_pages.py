"""The pages' security over real HTTP: the login form, the session cookie's flags, CSRF on
every form, no open redirect, logout and revocation ending a session, and markup a screen
reader can follow."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.web_tables import revoke_token
from dropout_pipeline_tests.web_support import RUNNING, running_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def served(web_world, tmp_path_factory):
    with running_app(web_world, "sqlite", tmp_path_factory.mktemp("pages")) as app:
        yield app


def cookie_of(response: httpx.Response, name: str) -> tuple[str, str]:
    """(value, attributes) of a Set-Cookie (httpx would keep a Secure cookie off plain http)."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            value, _, attributes = header.partition(";")
            return value.split("=", 1)[1], attributes.lower()
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def log_in(base: str, token: str, next_path: str = "/courses") -> tuple[httpx.Response, dict]:
    form = httpx.get(f"{base}/login", params={"next": next_path})
    login_csrf, attributes = cookie_of(form, "__Host-dropout_login_csrf")
    assert all(flag in attributes for flag in ("httponly", "secure", "samesite=lax", "path=/"))
    assert CSRF.search(form.text).group(1) == login_csrf
    answer = httpx.post(f"{base}/login", data={"token": token, "csrf_token": login_csrf, "next": next_path},
                        cookies={"__Host-dropout_login_csrf": login_csrf})
    cookies = {}
    if answer.status_code == 303:
        cookies["__Host-dropout_session"] = cookie_of(answer, "__Host-dropout_session")[0]
    return answer, cookies


def test_pages_ask_for_a_login_and_set_a_secure_httponly_samesite_session_cookie(served):
    base = served["base"]
    anonymous = httpx.get(f"{base}/courses/{quote(RUNNING, safe='')}?level=HIGH")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next=/courses/{quote(RUNNING, safe='/')}%3Flevel%3DHIGH"
    answer, cookies = log_in(base, served["tokens"]["teacher"], f"/courses/{quote(RUNNING, safe='')}")
    assert answer.status_code == 303 and answer.headers["location"] == f"/courses/{quote(RUNNING, safe='')}"
    _value, attributes = cookie_of(answer, "__Host-dropout_session")
    assert all(flag in attributes for flag in ("httponly", "secure", "samesite=lax", "path=/")) and "domain" not in attributes
    page = httpx.get(base + answer.headers["location"], cookies=cookies)
    assert page.status_code == 200 and "Risk list" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'") and page.headers["x-frame-options"] == "DENY"
    with engine_for(served["url"]).connect() as connection:
        stored = connection.execute(sa.select(schema.web_sessions.c.session_hash)).scalars().all()
    assert cookies["__Host-dropout_session"] not in stored  # only its hash is kept

    bad, _ = log_in(base, "dpt_wrong")
    assert bad.status_code == 401 and "not valid" in bad.text
    no_csrf = httpx.post(f"{base}/login", data={"token": served["tokens"]["teacher"]})
    assert no_csrf.status_code == 403 and "__Host-dropout_session" not in no_csrf.headers.get("set-cookie", "")
    for target in ("//evil.example/path", "https://evil.example/", "/\\evil.example"):
        elsewhere, _ = log_in(base, served["tokens"]["teacher"], target)
        assert elsewhere.headers["location"] == "/courses", target


def test_every_form_needs_its_sessions_csrf_token(served):
    base = served["base"]
    _answer, cookies = log_in(base, served["tokens"]["teacher"])
    page = httpx.get(f"{base}/courses/{quote(RUNNING, safe='')}", cookies=cookies)
    forms = re.findall(r"<form [^>]*method=\"post\"[^>]*>(.*?)</form>", page.text, re.S)
    assert len(forms) > 2 and all('name="csrf_token"' in form for form in forms)  # logout and every feedback form
    token = CSRF.search(page.text).group(1)
    prediction_id = int(re.search(r'action="/predictions/(\d+)/feedback"', page.text).group(1))

    def stored() -> int:
        with engine_for(served["url"]).connect() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(schema.prediction_feedback).where(
                schema.prediction_feedback.c.prediction_id == prediction_id)).scalar()

    before = stored()
    for sent in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        refused = httpx.post(f"{base}/predictions/{prediction_id}/feedback", data={"action": "contacted", **sent}, cookies=cookies)
        assert refused.status_code == 403, sent
    other_session = log_in(base, served["tokens"]["course_teacher"])[1]
    assert httpx.post(f"{base}/predictions/{prediction_id}/feedback", data={"action": "contacted", "csrf_token": token},
                      cookies=other_session).status_code == 403  # a token is its session's, not any session's
    assert stored() == before
    done = httpx.post(f"{base}/predictions/{prediction_id}/feedback", cookies=cookies,
                      data={"action": "not_useful", "csrf_token": token, "return_to": f"/courses/{quote(RUNNING, safe='')}"})
    assert done.status_code == 303 and done.headers["location"] == f"/courses/{quote(RUNNING, safe='')}" and stored() == before + 1


def test_logout_and_revocation_end_a_session(served):
    base = served["base"]
    _answer, cookies = log_in(base, served["tokens"]["admin"])
    page = httpx.get(f"{base}/courses", cookies=cookies)
    assert page.status_code == 200
    logout = httpx.post(f"{base}/logout", data={"csrf_token": CSRF.search(page.text).group(1)}, cookies=cookies)
    assert logout.status_code == 303 and httpx.get(f"{base}/courses", cookies=cookies).status_code == 303

    from dropout_pipeline_tests.web_support import token

    secret = token(served["url"], "teacher", "Soon Revoked", orgs=["UEL"])
    _answer, cookies = log_in(base, secret)
    assert httpx.get(f"{base}/courses", cookies=cookies).status_code == 200
    with engine_for(served["url"]).begin() as connection:
        token_id = connection.execute(sa.select(schema.api_tokens.c.id).where(schema.api_tokens.c.name == "Soon Revoked")).scalar()
        assert revoke_token(connection, token_id, datetime.now())
    assert httpx.get(f"{base}/courses", cookies=cookies).status_code == 303


def test_pages_are_marked_up_for_screen_readers_and_small_screens(served):
    base = served["base"]
    login = httpx.get(f"{base}/login")
    assert '<html lang="en">' in login.text and '<label for="token">' in login.text and 'id="token"' in login.text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in login.text
    _answer, cookies = log_in(base, served["tokens"]["teacher"])
    course = httpx.get(f"{base}/courses/{quote(RUNNING, safe='')}", cookies=cookies).text
    headings = re.findall(r"<h([1-6])", course)
    assert headings[0] == "1" and headings.count("1") == 1 and all(int(b) - int(a) <= 1 for a, b in zip(headings, headings[1:], strict=False))
    for control in re.findall(r'<select id="(\w+)"', course):
        assert f'<label for="{control}">' in course
    assert '<a class="skip" href="#main">' in course and '<main id="main">' in course and "<caption>" in course
    assert 'role="img" aria-label="' in course  # the week-by-week chart has a name
    css = httpx.get(f"{base}/static/app.css").text
    assert "@media (max-width: 640px)" in css


def test_the_api_docs_page_loads_everything_from_the_app_itself(served):
    page = httpx.get(f"{served['base']}/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: *'([^']+)'", page.text)
    assert sources and all(source.startswith("/") for source in sources), sources  # no CDN: teachers' networks may block one
    for source in sources:
        assert httpx.get(f"{served['base']}{source}").status_code == 200, source
    assert "https:" not in page.headers["content-security-policy"]
