"""A course's mapping to a model keeps the course's own settings (issue 22): promoting a domain
model for it changes which model serves it, never whether and how often it is predicted."""

from datetime import datetime

import sqlalchemy as sa

from dropout_pipeline.definitions import build_definitions
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.model_tables import course_mapping, map_courses
from dropout_pipeline_tests.conftest import resources_for

SET_AT, MAPPED_AT = datetime(2026, 11, 1), datetime(2026, 11, 20)


def settings_of(mapping: dict | None) -> tuple | None:
    return None if mapping is None else (mapping["model_name"], mapping["auto_predict"], mapping["predict_frequency"], mapping["worklist_share"])


def test_mapping_courses_to_a_model_keeps_their_auto_predict_frequency_and_share_on_every_engine(any_database_url):
    engine = engine_for(any_database_url)
    with engine.begin() as connection:
        connection.execute(schema.course_model_mapping.insert(), [
            {"course_id": "quiet", "model_name": "fail_risk_model", "auto_predict": False, "predict_frequency": "weekly",
             "worklist_share": 0.05, "updated_at": SET_AT},
        ])
    with engine.begin() as connection:
        map_courses(connection, ["quiet", "new"], "org_fail", MAPPED_AT)
    with engine.connect() as connection:
        quiet, new = course_mapping(connection, "quiet"), course_mapping(connection, "new")
    assert settings_of(quiet) == ("org_fail", False, "weekly", 0.05) and quiet["updated_at"] == MAPPED_AT
    assert settings_of(new) == ("org_fail", True, "daily", None)  # a course mapped for the first time: the defaults
    with engine.begin() as connection:  # said explicitly, a setting is set
        map_courses(connection, ["quiet"], "org_fail", MAPPED_AT, auto_predict=True, frequency="daily")
        assert settings_of(course_mapping(connection, "quiet")) == ("org_fail", True, "daily", 0.05)


def test_a_course_predicted_weekly_and_not_automatically_keeps_both_when_a_domain_model_for_it_is_promoted(simulator, trained_copy, instance):
    # A permissive gate: the domain model is promoted and its courses mapped to it.
    defs = build_definitions(resources_for(simulator, trained_copy["url"], trained_copy["models"], auc_floor=0.5, champion_margin=1.0))
    engine = engine_for(trained_copy["url"])
    with engine.connect() as connection:
        orgs = dict(connection.execute(sa.select(schema.courses.c.course_id, schema.courses.c.org)).all())
    course_id = trained_copy["running"][0]
    org = orgs[course_id]
    with engine.begin() as connection:
        connection.execute(schema.course_model_mapping.delete().where(schema.course_model_mapping.c.course_id == course_id))
        connection.execute(schema.course_model_mapping.insert(), [
            {"course_id": course_id, "model_name": "fail_risk_model", "auto_predict": False, "predict_frequency": "weekly",
             "worklist_share": 0.07, "updated_at": SET_AT},
        ])
    config = {"ops": {"train_domain_model": {"config": {"model_name": f"{org.lower()}_fail", "org": org}}}}
    assert defs.resolve_job_def("train_domain_model_job").execute_in_process(instance=instance, run_config=config).success
    with engine.connect() as connection:
        mapping = course_mapping(connection, course_id)
    assert settings_of(mapping) == (f"{org.lower()}_fail", False, "weekly", 0.07)
    assert mapping["updated_at"] > SET_AT
