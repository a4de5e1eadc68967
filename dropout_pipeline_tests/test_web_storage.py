"""The web app's tables on SQLite, PostgreSQL and MariaDB: tokens stored as hashes, scopes,
revocation, and feedback the database keeps append-only."""

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import bulk_insert, engine_for
from dropout_pipeline.storage.web_tables import create_token, principal_for_token, record_feedback, revoke_token


def test_tokens_are_hashed_scoped_revocable_and_feedback_is_append_only_on_every_engine(any_database_url):
    engine = engine_for(any_database_url)
    now = datetime(2026, 11, 22, 9, 0)
    with engine.begin() as connection:
        token_id, secret = create_token(connection, "Ms Lan", "teacher", now, courses=["course-v1:UEL+PY101+2026_S2"], orgs=["UEL"])
        with pytest.raises(ValueError, match="at least one --course or --org"):
            create_token(connection, "nobody", "teacher", now)
        with pytest.raises(ValueError, match="sees every course"):
            create_token(connection, "odd admin", "admin", now, orgs=["UEL"])
        stored = [tuple(row) for row in connection.execute(sa.select(schema.api_tokens))]
        assert secret not in repr(stored) and len(stored[0][1]) == 64  # only the SHA-256 is kept
        principal = principal_for_token(connection, secret)
        assert principal.courses == {"course-v1:UEL+PY101+2026_S2"} and principal.orgs == {"UEL"}
        assert principal.may_see("course-v1:UEL+AC102+2026_S2", "UEL") and not principal.may_see("course-v1:X+Y+1", "DHQG")
        assert principal_for_token(connection, secret + "x") is None
        bulk_insert(connection, schema.predictions, [{
            "user_id": 7, "course_id": "course-v1:UEL+PY101+2026_S2", "model_name": "m", "model_version": 1, "fail_risk_score": 81.0,
            "dropout_risk_score": None, "risk_level": "HIGH", "snapshot_date": date(2026, 11, 22), "snapshot_grade": 10.0,
            "snapshot_completion_rate": 0.1, "reasons": [], "dropout_reasons": None, "predicted_at": now, "is_latest": True}])
        prediction = dict(connection.execute(sa.select(schema.predictions.c.id, schema.predictions.c.user_id, schema.predictions.c.course_id)).mappings().one())
        entry = record_feedback(connection, prediction, "contacted", "called", principal, now)
    for change in (schema.prediction_feedback.update().values(note="rewritten"), schema.prediction_feedback.delete()):
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as connection:
            connection.execute(change)
    with engine.begin() as connection:
        assert connection.execute(sa.select(schema.prediction_feedback.c.note)).scalars().all() == ["called"] and entry["created_by"] == "Ms Lan"
        assert revoke_token(connection, token_id, now) and not revoke_token(connection, token_id, now)
        assert principal_for_token(connection, secret) is None


def test_a_course_row_is_kept_for_its_seconds_and_a_course_not_found_is_not_kept(sqlite_url):
    from dropout_pipeline.web.course_cache import CourseCache

    engine = engine_for(sqlite_url)
    key = "course-v1:UEL+PY101+2026_S2"
    row = {"course_id": key, "display_name": "Python", "org": "UEL", "start": datetime(2026, 9, 1), "end": datetime(2026, 12, 20),
           "discovered_at": datetime(2026, 8, 1)}
    kept, fresh = CourseCache(seconds=3600), CourseCache(seconds=0)
    with engine.begin() as connection:
        assert kept.course(connection, key) is None  # not there yet: nothing kept
        connection.execute(schema.courses.insert(), [row])
        assert kept.course(connection, key)["display_name"] == "Python"  # seen at once
        connection.execute(schema.courses.update().values(display_name="Python 2"))
        assert kept.course(connection, key)["display_name"] == "Python"  # kept for its seconds
        assert fresh.course(connection, key)["display_name"] == "Python 2"
        kept.course(connection, key)["display_name"] = "changed by a caller"
        assert kept.course(connection, key)["display_name"] == "Python"  # callers get copies
