"""The legacy V1 import, against a real MariaDB holding a generated V1 database with every
trap planted (legacy/generate.py), into real SQLite, PostgreSQL and MariaDB targets."""

from __future__ import annotations

import gc
from datetime import date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from dropout_pipeline.cli import main
from dropout_pipeline.legacy.contract import LegacySourceError
from dropout_pipeline.legacy.generate import create_v1_database
from dropout_pipeline.legacy.importer import import_v1
from dropout_pipeline.legacy.transform import LEGACY_MODEL
from dropout_pipeline.lifecycle.facts import frozen_rows_per_course, training_facts
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import create_db_engine, engine_for
from dropout_pipeline.storage.feature_tables import read_end_of_course_rows, read_training_data
from dropout_pipeline_tests.conftest import MARIADB_ADMIN_URL, _server_database

NOW = datetime(2026, 11, 22, 12, 0)
PRODUCT_TABLES = ["predictions", "training_data", "student_features", "legacy_quarantine", *schema.RAW_TABLES]


@pytest.fixture(scope="module")
def v1():
    """A generated V1 database on MariaDB (only ever read by the tests), and what was planted."""
    databases = _server_database(MARIADB_ADMIN_URL, "MariaDB")
    url = next(databases)
    truth = create_v1_database(url)
    yield url, truth
    databases.close()


@pytest.fixture
def target(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'target.db'}")
    yield engine
    engine.dispose()


def _rows(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as connection:
        t = schema.metadata.tables[table]
        return sorted(tuple(map(repr, r)) for r in connection.execute(sa.select(*[c for c in t.c if c.name != "id"])))


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    return {table: _rows(engine, table) for table in PRODUCT_TABLES}


def test_every_repaired_value_is_its_true_text_and_irreparable_text_is_reported(v1, target):
    url, truth = v1
    report = import_v1(url, target, now=NOW)
    checked = 0
    with target.connect() as connection:
        for (table, source_id, column), true in truth.true_text.items():
            if table == "raw_data":  # current_chapter is not carried from raw_data (the view gives mooc_progress's)
                assert report.repairs[(table, column, "text_repaired")] >= 1
                continue
            source = _source_row(url, table, source_id)
            t = schema.metadata.tables[table]
            stored = connection.execute(sa.select(t.c[column]).where(t.c.user_id == source["user_id"], t.c.course_id == source["course_id"])).scalar_one()
            assert stored == true, (table, source_id, source[column])
            assert stored != source[column]
            checked += 1
    assert checked >= 5
    assert {(t, i, c) for t, i, c, _v in report.suspect} == truth.suspect
    assert sum(n for (t, c, kind), n in report.repairs.items() if kind == "text_repaired") == len(truth.true_text) + len(truth.suspect)


def _source_row(url: str, table: str, source_id: int) -> dict:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(sa.text(f"SELECT * FROM {table} WHERE id = :id"), {"id": source_id}).mappings().one()
    engine.dispose()
    return dict(row)


def test_correct_text_is_left_exactly_as_it_was(v1, target):
    url, truth = v1
    import_v1(url, target, now=NOW)
    damaged = {i for t, i, _c in truth.true_text if t == "enrollments"}
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        source = {(r.course_id, r.user_id): r.full_name for r in connection.execute(sa.text("SELECT id, course_id, user_id, full_name FROM enrollments")) if r.id not in damaged}
    engine.dispose()
    with target.connect() as connection:
        stored = {(r.course_id, r.user_id): r.full_name for r in connection.execute(sa.select(schema.enrollments))}
    assert all(stored[key] == name for key, name in source.items() if key in stored)
    assert any(not name.isascii() for name in source.values())


def test_zero_and_impossible_dates_become_null(v1, target):
    url, truth = v1
    report = import_v1(url, target, now=NOW)
    with target.connect() as connection:
        for table, source_id, column in truth.nulled_dates:
            source = _source_row(url, table, source_id)
            assert source[column] in (None, "0000-00-00 00:00:00") or source[column] < datetime(1990, 1, 1)
            if table == "raw_data":
                continue  # enrollment_date is not carried; predicted_at's prediction is quarantined (another test)
            t = schema.metadata.tables[table]
            stored = connection.execute(sa.select(t.c[column]).where(t.c.user_id == source["user_id"], t.c.course_id == source["course_id"])).one()
            assert stored[0] is None
    dates = sum(n for (_t, _c, kind), n in report.repairs.items() if kind in ("zero_or_invalid_date", "impossible_date"))
    assert dates == len(truth.nulled_dates)


def test_quarantine_lists_exactly_the_planted_faults_with_reasons(v1, target):
    url, truth = v1
    report = import_v1(url, target, now=NOW)
    with target.connect() as connection:
        stored = connection.execute(sa.select(schema.legacy_quarantine)).mappings().all()
    assert {(q["source_table"], q["source_id"], q["part"], q["reason"]) for q in stored} == truth.quarantine
    assert all(q["detail"] and q["source_values"]["id"] == str(q["source_id"]) for q in stored)
    assert len(report.quarantine) == len(truth.quarantine)
    out_of_range = [q for q in stored if q["reason"] == "out_of_range"]
    assert {q["detail"].split(" = ")[0] for q in out_of_range} == {"mooc_grade_percentage", "fail_risk_score", "percentage"}


def test_verification_explains_every_difference_and_a_second_import_changes_nothing(v1, target):
    url, truth = v1
    first = import_v1(url, target, now=NOW)
    assert first.committed and not first.unexplained
    assert list(first.phases) == ["read, repair and write", "verification", "legacy model vs ours", "commit"]
    assert sum(first.phases.values()) == pytest.approx(first.seconds) and "verification" in first.render().splitlines()[0]
    assert gc.isenabled()
    differing = {(c.course_id, c.target) for c in first.differences}
    assert differing and all(c.quarantined or c.repaired_values for c in first.differences)
    before = _snapshot(target)
    second = import_v1(url, target, now=datetime(2026, 11, 23, 12, 0))
    assert _snapshot(target) == before
    assert sum(second.written.values()) == 0 and second.quarantine_new == 0
    assert {(c.course_id, c.target) for c in second.differences} == differing and not second.unexplained


def test_a_dry_run_writes_nothing_and_reports_what_the_import_would(v1, target):
    url, _truth = v1
    before = _snapshot(target)
    dry = import_v1(url, target, dry_run=True, now=NOW)
    assert _snapshot(target) == before
    assert all(not rows for rows in before.values())
    real = import_v1(url, target, now=NOW)
    assert dry.written == real.written and dry.repairs == real.repairs
    assert [(q.source_table, q.source_id, q.reason) for q in dry.quarantine] == [(q.source_table, q.source_id, q.reason) for q in real.quarantine]
    assert [c.as_dict() for c in dry.checks] == [c.as_dict() for c in real.checks]
    assert "DRY RUN" in dry.render() and "DRY RUN" not in real.render()


def test_end_of_course_rows_are_never_learned_from_but_are_read_for_evaluation(v1, target):
    url, truth = v1
    import_v1(url, target, now=NOW)
    with target.connect() as connection:
        assert read_training_data(connection).empty
        legacy = read_end_of_course_rows(connection)
        assert training_facts(connection).frozen_rows == 0
        assert frozen_rows_per_course(connection) == {}
    assert len(legacy) > 0 and set(legacy["snapshot_kind"]) == {"end_of_course"}
    assert set(legacy["course_id"]) == set(truth.finished)


def test_predictions_are_history_never_the_latest_over_a_newer_one(v1, target):
    url, truth = v1
    course = truth.finished[1]
    base = {"course_id": course, "model_version": 3, "fail_risk_score": 20.0, "risk_level": "LOW", "reasons": [], "is_latest": True}
    with target.begin() as connection:
        connection.execute(schema.predictions.insert(), [
            {**base, "user_id": 1001, "model_name": "fail_risk_model", "snapshot_date": date(2027, 1, 1), "predicted_at": datetime(2027, 1, 1)},
            {**base, "user_id": 1008, "model_name": "fail_risk_model", "snapshot_date": date(2024, 1, 1), "predicted_at": datetime(2024, 1, 1)},
        ])
    report = import_v1(url, target, now=datetime(2027, 2, 1))
    p = schema.predictions
    with target.connect() as connection:
        latest = dict(connection.execute(sa.select(p.c.user_id, p.c.model_name).where(p.c.course_id == course, p.c.is_latest.is_(True))).all())
        legacy = connection.execute(sa.select(p.c.fail_risk_score, p.c.risk_level).where(p.c.model_name == LEGACY_MODEL)).all()
    assert latest[1001] == "fail_risk_model"  # newer than the legacy prediction
    assert latest[1008] == LEGACY_MODEL  # the older one became history
    assert report.predictions_behind_newer == 1
    assert all(level == ("HIGH" if score >= 70 else "MEDIUM" if score >= 40 else "LOW") for score, level in legacy)


def test_the_report_compares_the_legacy_models_auc_with_ours_on_the_same_learners(v1, target):
    url, truth = v1
    import_v1(url, target, now=NOW)
    t, p = schema.training_data, schema.predictions
    with target.begin() as connection:
        outcomes = connection.execute(sa.select(t.c.course_id, t.c.user_id, t.c.is_passed)).all()
        ours = [{"course_id": c, "user_id": u, "model_name": "fail_risk_model", "model_version": 1,
                 "fail_risk_score": (10.0 if passed else 90.0) + (u % 7), "risk_level": "LOW", "reasons": [], "is_latest": False,
                 "snapshot_date": date(2025, 1, 1), "predicted_at": datetime(2025, 1, 1)} for c, u, passed in outcomes[:40]]
        connection.execute(p.insert(), ours)
    report = import_v1(url, target, dry_run=True, now=NOW)
    fail = next(c for c in report.comparisons if c.target == "fail")
    assert fail.learners == len(ours) and fail.our_auc == 1.0
    assert fail.legacy_auc is not None and 0.5 < fail.legacy_auc < 1.0
    assert "ROC AUC legacy-v1" in report.render()


def test_learners_without_an_enrolment_are_imported_and_counted(v1, target):
    url, truth = v1
    report = import_v1(url, target, now=NOW)
    assert report.learners_without_enrolment == len(truth.not_enrolled)
    p = schema.predictions
    with target.connect() as connection:
        keys = set(connection.execute(sa.select(p.c.course_id, p.c.user_id).where(p.c.model_name == LEGACY_MODEL)).all())
    assert truth.not_enrolled <= keys


def test_course_keys_with_plus_and_colon_are_kept_as_they_are(v1, target):
    url, truth = v1
    import_v1(url, target, now=NOW)
    with target.connect() as connection:
        stored = set(connection.execute(sa.select(schema.predictions.c.course_id).distinct()).scalars())
        semesters = set(connection.execute(sa.select(schema.training_data.c.semester).distinct()).scalars())
    assert stored == set(truth.courses) and all("+" in c and ":" in c for c in stored)
    assert semesters == {c.rsplit("+", 1)[-1] for c in truth.finished}


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql", "mariadb"])
def test_import_and_the_raw_data_view_on_every_engine(v1, engine_name, tmp_path):
    from dropout_pipeline_tests.conftest import database_url_for

    url, truth = v1
    databases = database_url_for(engine_name, tmp_path)
    target_url = next(databases)
    try:
        engine = engine_for(target_url)
        report = import_v1(url, engine, now=NOW)
        assert report.committed and not report.unexplained
        with engine.connect() as connection:
            view = connection.execute(sa.text("SELECT * FROM raw_data ORDER BY course_id, user_id")).mappings().all()
        assert list(view[0].keys()) == list(_view_columns())
        assert {(r["course_id"], r["user_id"]) for r in view} <= {(r["course_id"], r["user_id"]) for r in _source_rows(url)}
        assert len(view) == report.written["training_data"] + report.written["student_features"]
        by_key = {(r["course_id"], r["user_id"]): r for r in view}
        left_out = {i for _t, i, _p, _r in truth.quarantine}
        compared = 0
        for source in _source_rows(url):
            if source["id"] in left_out or (source["course_id"] in truth.finished and source["is_dropout"] is None) or source["mooc_is_passed"] is None and source["course_id"] in truth.finished:
                continue
            row = by_key[(source["course_id"], source["user_id"])]
            assert float(row["fail_risk_score"]) == pytest.approx(float(source["fail_risk_score"]), abs=1e-3)
            assert float(row["mooc_grade_percentage"]) == pytest.approx(float(source["mooc_grade_percentage"]), abs=1e-3)
            assert str(row["predicted_at"])[:19] == source["predicted_at"].isoformat(" ")  # SQLite views give text
            compared += 1
        assert compared > 100
    finally:
        databases.close()


def _view_columns():
    import importlib

    return importlib.import_module("dropout_pipeline.storage.migrations.versions.0008_legacy_import").VIEW_COLUMNS


def _source_rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = [dict(r) for r in connection.execute(sa.text("SELECT * FROM raw_data WHERE course_id <> ''")).mappings()]
    engine.dispose()
    return rows


def _checksums(url: str) -> dict:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        names = [r[0] for r in connection.exec_driver_sql("SHOW TABLES")]
        sums = {r[0]: r[1] for r in connection.exec_driver_sql(f"CHECKSUM TABLE {', '.join(names)}")}
    engine.dispose()
    return sums


def test_the_source_is_only_read(v1, target):
    url, _truth = v1
    before = _checksums(url)
    import_v1(url, target, now=NOW)
    assert _checksums(url) == before


@pytest.fixture
def bad_source():
    databases = _server_database(MARIADB_ADMIN_URL, "MariaDB")
    url = next(databases)
    yield url
    databases.close()


@pytest.mark.parametrize(
    ("ddl", "named"),
    [
        ([], ["no raw_data table"]),
        (["CREATE TABLE student_features (id INT)", "CREATE TABLE predictions (id INT)", "CREATE TABLE training_data (id INT)"],
         ["V2 database", "student_features", "predictions", "training_data"]),
        (["CREATE TABLE raw_data (id BIGINT, user_id INT, course_id VARCHAR(255), enrollment_date DATETIME, progress_percent DECIMAL(5,2), "
          "h5p_total_contents INT, video_total_videos INT, days_since_last_activity DECIMAL(6,2), is_dropout BOOL, fail_risk_score DECIMAL(5,2), "
          "dropout_risk_score DECIMAL(5,2), risk_level VARCHAR(10), predicted_at DATETIME, updated_at DATETIME)"],
         ["earlier V1 version", "mooc_grade_percentage"]),
        ("copy of V1 without two columns", ["raw_data lacks the column predicted_at", "mooc_grades lacks the column letter_grade"]),
    ],
)
def test_a_bad_source_fails_before_anything_is_written_naming_what_is_missing(bad_source, target, ddl, named, v1):
    engine = sa.create_engine(bad_source)
    with engine.begin() as connection:
        if isinstance(ddl, str):  # the V1 schema with a column dropped, and a side table missing another
            source_db = sa.make_url(v1[0]).database
            ddl = [f"CREATE TABLE raw_data LIKE {source_db}.raw_data", "ALTER TABLE raw_data DROP COLUMN predicted_at",
                   f"CREATE TABLE mooc_grades LIKE {source_db}.mooc_grades", "ALTER TABLE mooc_grades DROP COLUMN letter_grade"]
        for statement in ddl:
            connection.exec_driver_sql(statement)
    engine.dispose()
    before = _snapshot(target)
    with pytest.raises(LegacySourceError) as refused:
        import_v1(bad_source, target, now=NOW)
    for name in named:
        assert name in str(refused.value)
    assert _snapshot(target) == before


def test_an_unreachable_source_fails_without_printing_its_password(target, capsys, tmp_path, monkeypatch):
    with pytest.raises(LegacySourceError, match=r"cannot reach the V1 database at mysql\+pymysql://legacy:\*\*\*@127.0.0.1:1/v1"):
        import_v1("mysql+pymysql://legacy:s3cret-pw@127.0.0.1:1/v1", target, now=NOW)
    assert gc.isenabled()  # the import pauses the cycle collector; a failed one turns it back on
    monkeypatch.setenv("DROPOUT_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    assert main(["legacy", "import", "--source", "mysql+pymysql://legacy:s3cret-pw@127.0.0.1:1/v1"]) == 2
    out = capsys.readouterr()
    assert "s3cret-pw" not in out.out + out.err and "nothing written" in out.err


def test_the_cli_prints_the_report_and_its_dry_run_writes_nothing(v1, tmp_path, monkeypatch, capsys):
    url, truth = v1
    db = tmp_path / "cli.db"
    monkeypatch.setenv("DROPOUT_DB_URL", f"sqlite:///{db}")
    assert main(["legacy", "import", "--source", url, "--dry-run"]) == 0
    assert not db.exists()  # not even an empty file
    capsys.readouterr()
    engine_for(f"sqlite:///{db}").dispose()  # migrated, empty
    assert main(["legacy", "import", "--source", url, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "DRY RUN" in dry and "0 unexplained" in dry
    assert not any(_snapshot(create_db_engine(f"sqlite:///{db}")).values())
    assert main(["legacy", "import", "--source", url]) == 0
    real = capsys.readouterr().out
    assert "(committed)" in real and f"Quarantined (not imported, in legacy_quarantine): {len(truth.quarantine)}" in real


def test_the_dagster_job_imports_and_verifies_with_the_report_as_metadata(v1, tmp_path, monkeypatch, instance):
    from dropout_pipeline.defs.legacy import LEGACY_ASSETS, legacy_import_job
    from dropout_pipeline.defs.resources import DatabaseResource, PipelineSettings

    url, truth = v1
    monkeypatch.setenv("LEGACY_V1_DB_URL", url)
    defs = dg.Definitions(assets=LEGACY_ASSETS, jobs=[legacy_import_job], resources={
        "database": DatabaseResource(url=f"sqlite:///{tmp_path / 'dagster.db'}"), "settings": PipelineSettings(models_dir=str(tmp_path))})
    result = defs.resolve_job_def("legacy_import").execute_in_process(instance=instance)
    assert result.success
    materializations = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("legacy_v1_import")}
    metadata = materializations["legacy_v1_import"]
    assert metadata["quarantined"].value == len(truth.quarantine)
    assert metadata["unexplained_differences"].value == 0
    assert metadata["summary"].data["quarantined"] and "report" in metadata
    verification = result.asset_materializations_for_node("legacy_v1_verification")[0].metadata
    assert verification["unexplained_differences"].value == 0 and verification["dry_run"].value is True


def test_a_downgrade_below_0008_is_refused_while_end_of_course_rows_exist(v1, target):
    from alembic import command

    from dropout_pipeline.storage.database import alembic_config

    import_v1(v1[0], target, now=NOW)
    with pytest.raises(RuntimeError, match="end-of-course rows imported from legacy V1"):
        with target.begin() as connection:
            command.downgrade(alembic_config(connection), "0007")
    with target.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM raw_data")).scalar() > 0


def test_rows_a_live_pull_stored_first_are_kept_and_the_difference_is_explained(v1, target):
    url, truth = v1
    source = _source_row(url, "enrollments", 1)
    row = {"user_id": source["user_id"], "course_id": source["course_id"], "enrollment_id": 1, "full_name": "Tên từ nền tảng",
           "is_active": True, "created": datetime(2025, 1, 1), "fetched_at": datetime(2026, 11, 1)}
    with target.begin() as connection:
        connection.execute(schema.enrollments.insert(), [row])
    report = import_v1(url, target, now=NOW)
    assert report.committed and not report.unexplained
    check = next(c for c in report.checks if c.target == "enrollments" and c.course_id == source["course_id"])
    assert check.status == "explained" and "kept as they are" in check.explanation()
    with target.connect() as connection:
        names = connection.execute(sa.select(schema.enrollments.c.full_name).where(
            schema.enrollments.c.user_id == source["user_id"], schema.enrollments.c.course_id == source["course_id"])).scalars().all()
    assert names == ["Tên từ nền tảng"]
