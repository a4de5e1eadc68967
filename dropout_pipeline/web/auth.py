"""Who is asking, and what they may see: bearer tokens for the API, a session cookie (after a
login form) for the pages, CSRF tokens for every form, and the scope rules.

- no token, or one unknown or revoked: 401 (API) or the login page (pages);
- a teacher asking for a course outside the token's courses and organisations: 403;
- the model pages and `GET /models...`: admins only (403 for a teacher).
A secret (token, cookie) is compared by its SHA-256 in the database and never written to
a log, a response or an error.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dropout_pipeline.clock import utc_now
from dropout_pipeline.storage.web_tables import Principal, principal_for_token, session_principal

SESSION_COOKIE = "__Host-dropout_session"  # __Host-: Secure, Path=/, no Domain (browsers enforce it)
LOGIN_CSRF_COOKIE = "__Host-dropout_login_csrf"
CSRF_FIELD = "csrf_token"

bearer_scheme = HTTPBearer(auto_error=False, description="A token from `dropout-pipeline token create`", scheme_name="bearer")


class ApiError(Exception):
    """An error the API answers as JSON: {"detail": ..., "errors": [{"field", "in", "message"}]}."""

    def __init__(self, status: int, detail: str, field: str | None = None, location: str | None = None, headers: dict | None = None):
        self.status, self.detail, self.headers = status, detail, headers or {}
        self.errors = [{"field": field, "in": location, "message": detail}] if field else []


class LoginRequired(Exception):
    """A page asked for without a live session: the login page, then back."""

    def __init__(self, next_path: str):
        self.next_path = next_path


class PageForbidden(Exception):
    def __init__(self, message: str):
        self.message = message


@contextmanager
def reading(request: Request) -> Iterator[sa.Connection]:
    """The request's one reading connection: opened on first use, shared by the token check
    and the route, closed by the app once the response is sent (one pool checkout, and one
    liveness ping, per request). It reads in autocommit: no BEGIN and ROLLBACK around the
    reads, which on PostgreSQL (read committed) saw a snapshot per statement anyway."""
    connection = getattr(request.state, "connection", None)
    if connection is None:
        connection = request.state.connection = request.app.state.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    yield connection


def api_principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
    if credentials is None:
        raise ApiError(401, "a bearer token is required: send 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
    with reading(request) as connection:
        principal = principal_for_token(connection, credentials.credentials)
    if principal is None:
        raise ApiError(401, "the bearer token is not valid (unknown or revoked)", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ApiError(403, "the model pages are for admins: this token is a teacher's")


def require_course(principal: Principal, course: dict) -> None:
    if not principal.may_see(course["course_id"], course["org"]):
        raise ApiError(403, "this token's scope does not include the course", field="course_id", location="path")


class PageSession:
    def __init__(self, principal: Principal, csrf: str, cookie: str):
        self.principal, self.csrf, self.cookie = principal, csrf, cookie


def page_session(request: Request) -> PageSession:
    cookie = request.cookies.get(SESSION_COOKIE)
    found = None
    if cookie:
        with reading(request) as connection:
            found = session_principal(connection, cookie, utc_now())
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return PageSession(found[0], found[1], cookie)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())
