"""The web app's tables: hashed bearer tokens and their scopes, browser sessions, and the
append-only feedback teachers give on predictions.

Secrets never reach the database: a token or a session cookie is stored as the SHA-256
of its secret, so a copy of the database lets no one in.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from dropout_pipeline.storage import schema

ROLES = ("teacher", "admin")
FEEDBACK_ACTIONS = ("contacted", "not_useful", "incorrectly_flagged")
TOKEN_PREFIX = "dpt_"  # recognisable in a leaked paste, so secret scanners can find it

tokens, scopes, sessions, feedback = schema.api_tokens, schema.api_token_scopes, schema.web_sessions, schema.prediction_feedback


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's holder, with the courses and organisations it may see."""

    token_id: int
    name: str
    role: str
    courses: frozenset[str] = field(default_factory=frozenset)
    orgs: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see(self, course_id: str, org: str) -> bool:
        return self.is_admin or course_id in self.courses or org in self.orgs


def create_token(
    connection: sa.Connection, name: str, role: str, now: datetime, courses: Sequence[str] = (), orgs: Sequence[str] = ()
) -> tuple[int, str]:
    """A new token; returns its id and its secret, which is stored nowhere and shown once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "teacher" and not (courses or orgs):
        raise ValueError("a teacher's token needs at least one --course or --org")
    if role == "admin" and (courses or orgs):
        raise ValueError("an admin's token sees every course: give no --course or --org")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = connection.execute(tokens.insert().values(token_hash=secret_hash(secret), name=name, role=role, created_at=now)).inserted_primary_key[0]
    rows = [{"token_id": token_id, "kind": "course", "value": c} for c in dict.fromkeys(courses)]
    rows += [{"token_id": token_id, "kind": "org", "value": o} for o in dict.fromkeys(orgs)]
    if rows:
        connection.execute(scopes.insert(), rows)
    return token_id, secret


def _principal(connection: sa.Connection, row: sa.RowMapping) -> Principal:
    granted = connection.execute(sa.select(scopes.c.kind, scopes.c.value).where(scopes.c.token_id == row["id"])).all()
    return Principal(
        token_id=row["id"], name=row["name"], role=row["role"],
        courses=frozenset(v for k, v in granted if k == "course"), orgs=frozenset(v for k, v in granted if k == "org"),
    )


def principal_for_token(connection: sa.Connection, secret: str) -> Principal | None:
    """The holder of a valid, unrevoked token; None for anything else. One round trip: the
    token and its scopes together (every API request asks)."""
    rows = connection.execute(
        sa.select(tokens.c.id, tokens.c.name, tokens.c.role, scopes.c.kind, scopes.c.value)
        .select_from(tokens.outerjoin(scopes, scopes.c.token_id == tokens.c.id))
        .where(tokens.c.token_hash == secret_hash(secret), tokens.c.revoked_at.is_(None))
    ).all()
    if not rows:
        return None
    first = rows[0]
    return Principal(
        token_id=first.id, name=first.name, role=first.role,
        courses=frozenset(r.value for r in rows if r.kind == "course"), orgs=frozenset(r.value for r in rows if r.kind == "org"),
    )


def list_tokens(connection: sa.Connection) -> list[dict]:
    rows = connection.execute(sa.select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.created_at, tokens.c.revoked_at).order_by(tokens.c.id)).mappings()
    listed = []
    for row in rows:
        granted = connection.execute(sa.select(scopes.c.kind, scopes.c.value).where(scopes.c.token_id == row["id"])).all()
        listed.append({**row, "scope": [f"{kind} {value}" for kind, value in granted]})
    return listed


def revoke_token(connection: sa.Connection, token_id: int, now: datetime) -> bool:
    """Revoke a token and end its sessions; False when no such unrevoked token exists."""
    done = connection.execute(tokens.update().where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    connection.execute(sessions.delete().where(sessions.c.token_id == token_id))
    return done.rowcount == 1


def open_session(connection: sa.Connection, token_id: int, now: datetime, lifetime: timedelta) -> tuple[str, str]:
    """A browser session for a token: (the cookie's secret, the session's CSRF token).
    Expired sessions are cleared on the way."""
    connection.execute(sessions.delete().where(sessions.c.expires_at < now))
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    connection.execute(sessions.insert().values(session_hash=secret_hash(cookie), token_id=token_id, csrf_token=csrf, created_at=now, expires_at=now + lifetime))
    return cookie, csrf


def session_principal(connection: sa.Connection, cookie: str, now: datetime) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session whose token is still valid."""
    row = connection.execute(
        sa.select(tokens, sessions.c.csrf_token)
        .select_from(sessions.join(tokens, tokens.c.id == sessions.c.token_id))
        .where(sessions.c.session_hash == secret_hash(cookie), sessions.c.expires_at > now, tokens.c.revoked_at.is_(None))
    ).mappings().first()
    return (_principal(connection, row), row["csrf_token"]) if row else None


def close_session(connection: sa.Connection, cookie: str) -> None:
    connection.execute(sessions.delete().where(sessions.c.session_hash == secret_hash(cookie)))


def record_feedback(connection: sa.Connection, prediction: dict, action: str, note: str | None, principal: Principal, now: datetime) -> dict:
    """Append a teacher's action on a prediction; returns the stored row."""
    if action not in FEEDBACK_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(FEEDBACK_ACTIONS)}")
    row = {
        "prediction_id": prediction["id"], "user_id": prediction["user_id"], "course_id": prediction["course_id"], "action": action,
        "note": note or None, "token_id": principal.token_id, "created_by": principal.name, "created_at": now,
    }
    row["id"] = connection.execute(feedback.insert().values(**row)).inserted_primary_key[0]
    return row


FEEDBACK_COLUMNS = (feedback.c.id, feedback.c.prediction_id, feedback.c.action, feedback.c.note, feedback.c.created_by, feedback.c.created_at)


def feedback_for_learner(connection: sa.Connection, course_id: str, user_id: int) -> list[dict]:
    """Every action taken on the learner's predictions in the course, oldest first."""
    query = sa.select(*FEEDBACK_COLUMNS).where(feedback.c.course_id == course_id, feedback.c.user_id == user_id).order_by(feedback.c.created_at, feedback.c.id)
    return [dict(row) for row in connection.execute(query).mappings()]


def feedback_for_prediction(connection: sa.Connection, prediction_id: int) -> list[dict]:
    query = sa.select(*FEEDBACK_COLUMNS).where(feedback.c.prediction_id == prediction_id).order_by(feedback.c.created_at, feedback.c.id)
    return [dict(row) for row in connection.execute(query).mappings()]


LATEST_FEEDBACK = feedback.alias("latest_feedback")
LATEST_FEEDBACK_COLUMNS = tuple(LATEST_FEEDBACK.c[column.name].label(f"feedback_{column.name}") for column in FEEDBACK_COLUMNS)


def latest_feedback_id(course_id: str, user_id: sa.ColumnElement) -> sa.ScalarSelect:
    """The id of a learner's most recent action in the course, for a statement that joins
    LATEST_FEEDBACK on it (each learner of a risk list's page, by key)."""
    return (
        sa.select(feedback.c.id)
        .where(feedback.c.course_id == course_id, feedback.c.user_id == user_id)
        .order_by(feedback.c.created_at.desc(), feedback.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def feedback_entry(row: Mapping) -> dict | None:
    """The latest feedback of a row read with LATEST_FEEDBACK_COLUMNS (None: no action yet)."""
    if row["feedback_id"] is None:
        return None
    return {column.name: row[f"feedback_{column.name}"] for column in FEEDBACK_COLUMNS}
