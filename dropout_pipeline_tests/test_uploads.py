"""Uploading a CSV for analysis, over real HTTP against the served app (SQLite world): a
file exported from a course's features is profiled with the right counts and scored as
the pipeline scored that course; a wrong encoding, a missing column, a bad cell, a
formula and a 200 MB body each get a clear error naming what and where; the upload is
admins' only; nothing of the file stays open or on disk, and no table of the product
changes."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.analytics.upload import MAX_UPLOAD_BYTES, checked_rows, decoded, profile, read_cells
from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.storage.model_tables import default_model
from dropout_pipeline_tests.test_web_pages import CSRF, log_in
from dropout_pipeline_tests.web_support import RUNNING, running_app

URL = "/api/v1/uploads"


@pytest.fixture(scope="module")
def app(web_world, tmp_path_factory):
    with running_app(web_world, "sqlite", tmp_path_factory.mktemp("uploads")) as served:
        yield served


@pytest.fixture(scope="module")
def course_features(app) -> pd.DataFrame:
    """The running course's current features, as the pipeline stored them, with an outcome
    column the test can count by hand."""
    with engine_for(app["url"]).connect() as connection:
        rows = pd.read_sql(sa.select(schema.student_features).where(schema.student_features.c.course_id == RUNNING), connection)
    rows = rows[["user_id", "course_id", "snapshot_date", *FEATURE_NAMES]].sort_values("user_id").reset_index(drop=True)
    return rows.assign(is_passed=(rows["mooc_grade_percentage"] >= 50).astype(int))


def csv_bytes(frame: pd.DataFrame, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode(encoding)


def post(app, data: bytes, role: str = "admin", name: str = "learners.csv") -> httpx.Response:
    return app["clients"][role].post(URL, files={"file": (name, data, "text/csv")})


def table_digests(app) -> dict[str, str]:
    """Every table of the product, row for row."""
    digests = {}
    with engine_for(app["url"]).connect() as connection:
        for table in schema.metadata.sorted_tables:
            rows = sorted(repr(tuple(row)) for row in connection.execute(sa.select(table)))
            digests[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


def open_deleted_files() -> set[str]:
    """The files this process holds open that are already unlinked (a spooled upload on disk)."""
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith("(deleted)"):
            found.add(f"{fd.name} {target}")
    return found


@contextmanager
def leaves_no_trace(app) -> Iterator[None]:
    before_tables, before_open = table_digests(app), open_deleted_files()
    yield
    assert table_digests(app) == before_tables
    assert open_deleted_files() <= before_open  # the upload's temporary file is closed: gone


def test_a_courses_features_are_profiled_with_correct_counts_and_scored_as_the_pipeline_scored_them(app, course_features):
    with leaves_no_trace(app):
        answer = post(app, csv_bytes(course_features))
    assert answer.status_code == 200, answer.text
    profile, scores = answer.json()["profile"], answer.json()["scores"]
    assert profile["records"] == len(course_features) > 20
    assert profile["columns"] == len(course_features.columns) and profile["features"] == len(FEATURE_NAMES)
    assert profile["outcomes"] == [{"outcome": "is_passed", "known": len(course_features), "positive": int(course_features["is_passed"].sum()),
                                    "rate": pytest.approx(course_features["is_passed"].mean())}]
    missing = {row["column"]: row["missing"] for row in profile["missing"]}
    assert missing == {column: int(course_features[column].isna().sum()) for column in course_features.columns}
    grades = next(d for d in profile["distributions"] if d["column"] == "mooc_grade_percentage")
    assert sum(grades["counts"]) == course_features["mooc_grade_percentage"].notna().sum()
    assert profile["box_plots"]["by"] == "is_passed" and profile["correlations"]["columns"]

    p = schema.predictions
    with engine_for(app["url"]).connect() as connection:
        fail_model = default_model(connection, "fail")
        latest = pd.read_sql(sa.select(p).where(p.c.course_id == RUNNING, p.c.is_latest.is_(True)), connection)
    assert set(latest["model_version"]) == {fail_model["model_version"]}  # the default made the stored predictions
    assert scores["scored"] and scores["models"]["fail"] == f"{fail_model['model_name']} v{fail_model['model_version']}"
    assert len(scores["rows"]) == len(course_features)
    assert [row["fail_risk_score"] for row in scores["rows"]] == sorted((row["fail_risk_score"] for row in scores["rows"]), reverse=True)
    stored = latest.set_index(latest["user_id"].astype(str))
    for row in scores["rows"]:
        assert row["fail_risk_score"] == pytest.approx(stored.loc[row["user_id"], "fail_risk_score"], abs=1e-4)
        assert [r["text"] for r in row["reasons"]] == [r["text"] for r in stored.loc[row["user_id"], "reasons"]]
    assert sum(scores["risk_levels"].values()) == scores["scored_rows"] == len(course_features)
    riskiest = app["clients"]["admin"].post(URL, params={"rows": 3}, files={"file": ("learners.csv", csv_bytes(course_features), "text/csv")}).json()["scores"]
    assert riskiest["rows"] == scores["rows"][:3] and riskiest["scored_rows"] == len(course_features)


def test_a_file_without_every_model_feature_is_profiled_and_says_which_columns_are_missing(app, course_features):
    kept = ["user_id", "mooc_grade_percentage", "days_since_last_activity", "enrollment_mode", "is_passed"]
    answer = post(app, csv_bytes(course_features[kept]))
    assert answer.status_code == 200, answer.text
    scores = answer.json()["scores"]
    assert not scores["scored"] and scores["rows"] == []
    assert set(scores["missing_columns"]) == set(FEATURE_NAMES) - set(kept)
    assert answer.json()["profile"]["features"] == 3 and answer.json()["profile"]["records"] == len(course_features)


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte_and_the_line(app):
    latin = "user_id,mooc_grade_percentage,enrollment_mode\n1,80,audit\n2,75,vérifié\n".encode("latin-1")
    answer = post(app, latin)
    assert answer.status_code == 422
    body = answer.json()
    assert "not UTF-8" in body["detail"] and "line 3" in body["detail"]
    offset = latin.index("é".encode("latin-1"))
    assert body["errors"][0]["line"] == 3 and f"offset {offset}" in body["errors"][0]["message"]

    utf16 = post(app, "user_id,mooc_grade_percentage\n1,80\n".encode("utf-16"))
    assert utf16.status_code == 422 and "UTF-16" in utf16.json()["detail"]
    with_bom = post(app, "\ufeffuser_id,mooc_grade_percentage\n1,80\n".encode("utf-8"))
    assert with_bom.status_code == 200 and with_bom.json()["profile"]["records"] == 1


def test_a_missing_column_and_bad_cells_are_named_with_their_lines(app):
    no_id = post(app, b"learner,mooc_grade_percentage\n1,80\n")
    assert no_id.status_code == 422
    assert [(e["field"], e["in"]) for e in no_id.json()["errors"]] == [("user_id", "body")] and "user_id" in no_id.json()["detail"]

    no_feature = post(app, b"user_id,favourite_colour\n1,blue\n")
    assert no_feature.status_code == 422 and "no column is a feature of the dictionary" in no_feature.json()["detail"]

    bad = post(app, b"user_id,mooc_grade_percentage,course_week\n1,80,2\n2,abc,3\n3,140,2.5\n")
    assert bad.status_code == 422
    assert [(e["line"], e["field"]) for e in bad.json()["errors"]] == [(3, "mooc_grade_percentage"), (4, "mooc_grade_percentage"), (4, "course_week")]
    assert "'abc' is not a number" in bad.json()["detail"] and "140 is outside 0 to 100" in bad.json()["detail"]

    after_a_blank_line = post(app, b"user_id,mooc_grade_percentage\n1,80\n\n2,abc\n")  # blank lines are skipped, and counted
    assert [(e["line"], e["field"]) for e in after_a_blank_line.json()["errors"]] == [(4, "mooc_grade_percentage")]
    unreadable_header = post(app, b'user_id,"' + b"x" * 140_000 + b'"\n1,2\n')  # a field past the csv module's limit
    assert unreadable_header.status_code == 422 and unreadable_header.json()["errors"][0]["line"] == 1


def test_a_formula_cell_is_refused_with_its_line_and_column_and_a_negative_number_is_not_one(app):
    formula = b'user_id,enrolled_days_after_start,enrollment_mode\n1,-3,audit\n2,5,"=HYPERLINK(""http://x.invalid"",""x"")"\n3,+2,@SUM(A1)\n'
    answer = post(app, formula)
    assert answer.status_code == 422
    body = answer.json()
    assert "spreadsheet formulas" in body["detail"]
    assert [(e["line"], e["field"]) for e in body["errors"]] == [(3, "enrollment_mode"), (4, "enrollment_mode")]
    assert post(app, b"user_id,enrolled_days_after_start\n1,-3\n2,+2\n").status_code == 200


BOUNDARY = "uploadboundary"
MULTIPART_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class BigBody:
    """A 200 MB multipart upload made as it is sent (the test never holds it), counting what was sent."""

    chunk = b"1,50\r\n" * (1024 * 1024 // 6)

    def __init__(self, before_file: bytes = b""):
        self.head = before_file + (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                                   "Content-Type: text/csv\r\n\r\nuser_id,mooc_grade_percentage\r\n").encode()
        self.chunks, self.sent = 200 * 1024 * 1024 // len(self.chunk) + 1, 0

    def __len__(self) -> int:
        return len(self.head) + self.chunks * len(self.chunk)

    def __iter__(self) -> Iterator[bytes]:
        for piece in (self.head, *(self.chunk for _ in range(self.chunks))):
            self.sent += len(piece)
            yield piece


def test_a_200_mb_upload_is_refused_with_413_after_reading_no_more_than_the_limit(app):
    body = BigBody()

    with leaves_no_trace(app):
        answer = app["clients"]["admin"].post(URL, content=iter(body), headers=MULTIPART_HEADERS)  # chunked: no size declared
    assert answer.status_code == 413, answer.text
    assert "larger than the limit of 50 MB" in answer.json()["detail"] and answer.json()["errors"][0]["field"] == "file"
    assert body.sent < len(body) / 2  # the server stopped reading at the limit: the client never got to send most of it

    declared = BigBody()
    answer = app["clients"]["admin"].post(URL, content=iter(declared), headers={**MULTIPART_HEADERS, "Content-Length": str(len(declared))})
    assert answer.status_code == 413 and "larger than the limit" in answer.json()["detail"]
    assert declared.sent < MAX_UPLOAD_BYTES // 2  # a declared size over the limit: refused before the body is read


def test_a_spooled_upload_is_deleted_after_the_analysis_and_after_an_error(app, course_features):
    big = pd.concat([course_features] * (3_000_000 // len(csv_bytes(course_features)) + 1), ignore_index=True)
    data = csv_bytes(big)
    assert len(data) > 2_000_000  # past Starlette's 1 MB spool: written to a temporary file
    with leaves_no_trace(app):
        assert post(app, data).status_code == 200
    with leaves_no_trace(app):
        assert post(app, data + b"7,abc,2026-11-22,audit,not-a-number\n").status_code == 422


def test_uploads_are_for_admins_and_need_a_multipart_body(app):
    assert post(app, b"user_id,mooc_grade_percentage\n1,80\n", role="teacher").status_code == 403
    assert httpx.post(app["base"] + URL, files={"file": ("a.csv", b"user_id\n1\n")}).status_code == 401
    not_a_form = app["clients"]["admin"].post(URL, json={"file": "user_id\n1\n"})
    assert not_a_form.status_code == 415 and not_a_form.json()["errors"][0]["field"] == "file"
    no_file = app["clients"]["admin"].post(URL, data={"other": "x"}, files={"unrelated": ("a.csv", b"x")})
    assert no_file.status_code == 422 and "`file`" in no_file.json()["detail"]


def test_the_upload_page_needs_the_sessions_csrf_token_and_shows_the_analysis(app, course_features):
    _, cookies = log_in(app["base"], app["tokens"]["admin"], "/admin/uploads")
    page = httpx.get(app["base"] + "/admin/uploads", cookies=cookies)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    token = CSRF.search(page.text).group(1)
    files = {"file": ("learners.csv", csv_bytes(course_features), "text/csv")}
    forged = httpx.post(app["base"] + "/admin/uploads", cookies=cookies, data={"csrf_token": "forged"}, files=files)
    assert forged.status_code == 403
    shown = httpx.post(app["base"] + "/admin/uploads", cookies=cookies, data={"csrf_token": token}, files=files, timeout=60)
    assert shown.status_code == 200 and shown.text.count('<svg class="chart') > 10
    assert f"<td>{len(course_features)}</td>" in shown.text and "riskiest of" in shown.text
    refused = httpx.post(app["base"] + "/admin/uploads", cookies=cookies, data={"csrf_token": token},
                         files={"file": ("x.csv", b"user_id,enrollment_mode\n1,=1+1\n", "text/csv")})
    assert refused.status_code == 422 and 'role="alert"' in refused.text and "line 2, column enrollment_mode" in refused.text
    big = BigBody(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode())
    too_large = httpx.post(app["base"] + "/admin/uploads", cookies=cookies, content=iter(big), headers=MULTIPART_HEADERS, timeout=60)
    assert too_large.status_code == 413 and "larger than the limit of 50 MB" in too_large.text and big.sent < len(big) / 2

    _, teacher = log_in(app["base"], app["tokens"]["teacher"], "/admin/uploads")
    assert httpx.get(app["base"] + "/admin/uploads", cookies=teacher).status_code == 403


def test_a_small_files_profile_matches_the_counts_worked_by_hand():
    text = "user_id,mooc_grade_percentage,enrollment_mode,is_dropout\n1,1,audit,0\n2,2,audit,0\n3,3,verified,0\n4,4,,1\n5,100,audit,1\n6,,audit,\n"
    found = profile(checked_rows(read_cells(decoded(text.encode()))))
    assert (found["records"], found["columns"], found["features"]) == (6, 4, 2)
    assert found["outcomes"] == [{"outcome": "is_dropout", "known": 5, "positive": 2, "rate": 0.4}]
    assert {m["column"]: m["missing"] for m in found["missing"]} == {"user_id": 0, "mooc_grade_percentage": 1, "enrollment_mode": 1, "is_dropout": 1}
    assert found["categories"] == [{"column": "enrollment_mode", "counts": {"audit": 4, "verified": 1}}]
    grades = found["box_plots"]["columns"][0]
    assert grades["column"] == "mooc_grade_percentage"
    # is_dropout = 0: 1, 2, 3 (quartiles 1.5, 2, 2.5); = 1: 4 and 100 (quartiles 28, 52, 76, IQR 48: no outlier)
    assert [(b["group"], b["n"], b["q1"], b["median"], b["q3"], b["low"], b["high"], b["outliers"]) for b in grades["boxes"]] == [
        ("is_dropout = 0", 3, 1.5, 2.0, 2.5, 1.0, 3.0, 0), ("is_dropout = 1", 2, 28.0, 52.0, 76.0, 4.0, 100.0, 0)]
    histogram = next(d for d in found["distributions"] if d["column"] == "mooc_grade_percentage")
    assert sum(histogram["counts"]) == 5 and histogram["edges"][0] == 1 and histogram["edges"][-1] == 100
    assert found["correlations"]["columns"] == ["mooc_grade_percentage", "is_dropout"]
    assert found["correlations"]["matrix"][0][1] == pytest.approx(pd.Series([1, 2, 3, 4, 100]).corr(pd.Series([0, 0, 0, 1, 1])), abs=1e-4)
