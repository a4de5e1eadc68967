"""The pages in a real browser: headless Chromium (Debian's, driven by Playwright) against the
app on loopback. A teacher logs in, opens a course, filters HIGH, opens a learner and sees
the chart, marks "contacted" and still sees it after a reload, and cannot open another
organisation's course; an admin sees the performance page. Each page is screenshotted
into test-artifacts/screenshots/ (laptop and phone widths)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import sqlalchemy as sa

from dropout_pipeline.features.dictionary import FEATURE_NAMES
from dropout_pipeline.storage import schema
from dropout_pipeline.storage.database import engine_for
from dropout_pipeline_tests.web_support import OTHER_ORG_COURSE, RUNNING, running_app

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[1] / "test-artifacts" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed at {CHROMIUM} (`make test` installs Debian's chromium)")


@pytest.fixture(scope="module")
def served(web_world, tmp_path_factory):
    with running_app(web_world, "sqlite", tmp_path_factory.mktemp("browser")) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(browser, base: str, token: str, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, base_url=base)
    page = context.new_page()
    page.goto("/courses")
    assert page.url.startswith(base + "/login")  # no session: the login form
    shoot(page, "login")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/courses")
    return context, page


def test_a_teacher_filters_high_opens_a_learner_marks_contacted_and_cannot_open_another_orgs_course(served, browser):
    base = served["base"]
    context, page = log_in(browser, base, served["tokens"]["teacher"])
    try:
        cookie = next(c for c in context.cookies() if c["name"] == "__Host-dropout_session")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
        assert page.get_by_role("heading", name="Courses").is_visible()
        shoot(page, "courses")
        page.get_by_role("link", name="Financial Accounting").click()
        page.wait_for_url(f"{base}/courses/{quote(RUNNING, safe='')}")
        assert page.get_by_role("heading", name="Risk list").is_visible()

        page.get_by_label("Risk level", exact=True).select_option("HIGH")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**level=HIGH**")
        rows = page.locator("table.risk-list tbody tr")
        with engine_for(served["url"]).connect() as connection:
            high = connection.execute(sa.select(sa.func.count()).select_from(schema.predictions).where(
                schema.predictions.c.course_id == RUNNING, schema.predictions.c.is_latest.is_(True), schema.predictions.c.risk_level == "HIGH")).scalar()
        assert rows.count() == min(high, 50) > 0
        assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.level)")) == {"HIGH"}
        shoot(page, "course-high")

        first = rows.first.locator("th a")
        name = first.inner_text()
        first.click()
        page.wait_for_url("**/students/**")
        chart = page.locator("figure.learner-chart svg.chart")
        assert chart.is_visible() and chart.locator("polyline").count() >= 2  # fail risk and grade, at least
        assert chart.get_attribute("aria-label").startswith("Risk and grade per course week")
        assert page.get_by_role("heading", name=name).is_visible()
        shoot(page, "learner")

        page.get_by_label("Contacted").check()
        page.get_by_label("Note (optional)").fill("phoned; agreed a plan for week 12")
        page.get_by_role("button", name="Save").click()
        page.wait_for_load_state()
        page.reload()
        history = page.locator("ul.history li")
        assert history.count() >= 1
        assert "Contacted by Tuan Teacher" in history.last.inner_text() and "agreed a plan" in history.last.inner_text()
        shoot(page, "learner-after-contacted")

        response = page.goto(f"/courses/{quote(OTHER_ORG_COURSE, safe='')}")
        assert response.status == 403
        assert page.get_by_role("heading", name="Not allowed").is_visible() and "outside your token's scope" in page.content()
        shoot(page, "other-org-forbidden")
        assert page.goto("/models").status == 403
    finally:
        context.close()


def test_the_risk_list_reads_on_a_phone(served, browser):
    context, page = log_in(browser, served["base"], served["tokens"]["course_teacher"], width=390, height=844)
    try:
        page.goto(f"/courses/{quote(RUNNING, safe='')}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 + 1  # nothing wider than the screen: no sideways scrolling
        shoot(page, "course-phone")
    finally:
        context.close()


def test_an_admin_sees_the_performance_page_with_its_charts_confusion_matrix_and_calibration(served, browser):
    context, page = log_in(browser, served["base"], served["tokens"]["admin"])
    try:
        page.get_by_role("link", name="Models").click()
        page.wait_for_url("**/models")
        shoot(page, "models")
        page.get_by_role("link", name="fail_risk_model").click()
        page.wait_for_url("**/models/fail_risk_model")
        assert page.get_by_role("heading", name="Performance of fail_risk_model").is_visible()
        charts = page.locator("svg.chart")
        assert charts.count() == 3  # ROC AUC per week by version, calibration, trend
        assert page.locator("svg.chart polyline").count() >= 3
        matrix = page.locator("table.confusion")
        assert matrix.is_visible() and "true positives" in matrix.inner_text()
        assert page.get_by_role("heading", name="Calibration").is_visible()
        shoot(page, "model-performance")
    finally:
        context.close()


def test_an_admin_uploads_a_csv_and_sees_its_profile_plots_and_scores(served, browser, tmp_path):
    with engine_for(served["url"]).connect() as connection:
        rows = pd.read_sql(sa.select(schema.student_features).where(schema.student_features.c.course_id == RUNNING), connection)
    rows = rows[["user_id", "course_id", "snapshot_date", *FEATURE_NAMES]].assign(is_passed=lambda r: (r["mooc_grade_percentage"] >= 50).astype(int))
    upload = tmp_path / "learners.csv"
    rows.to_csv(upload, index=False)
    context, page = log_in(browser, served["base"], served["tokens"]["admin"])
    try:
        page.get_by_role("link", name="Analyse a file").click()
        page.wait_for_url("**/admin/uploads")
        page.get_by_label("CSV file").set_input_files(str(upload))
        page.get_by_role("button", name="Analyse").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Profile", exact=True).is_visible()
        assert f"{len(rows)}" in page.locator("table.upload-summary").inner_text()
        heatmap = page.locator("figure.heatmap svg.chart")
        assert heatmap.is_visible() and heatmap.bounding_box()["width"] > 300
        columns = len(page.evaluate("Array.from(document.querySelectorAll('figure.heatmap svg > text')).map(t => t.textContent)")) // 2
        assert heatmap.locator("rect").count() == columns * columns > 4
        histogram = page.locator("figure.distribution svg.chart").first
        assert histogram.is_visible() and histogram.locator("rect").count() >= 1
        assert page.get_by_role("heading", name="Scores").is_visible()
        assert page.locator("table.upload-scores tbody tr").count() == min(len(rows), 50)
        shoot(page, "upload-analysis")
    finally:
        context.close()


def test_pages_work_offline_every_asset_comes_from_the_app(served, browser):
    """No request leaves the app's origin: charts are inline SVG, the stylesheet is its own."""
    context, page = log_in(browser, served["base"], served["tokens"]["admin"])
    elsewhere = []
    page.on("request", lambda request: None if request.url.startswith(served["base"]) else elsewhere.append(request.url))
    try:
        for target in ("/courses", f"/courses/{quote(RUNNING, safe='')}", "/models/fail_risk_model"):
            page.goto(target)
            assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith("system-ui")
        assert elsewhere == []
    finally:
        context.close()


if os.environ.get("CI") and not CHROMIUM.exists():  # pragma: no cover - CI installs it: a missing browser there is a failure
    raise RuntimeError("CI without /usr/bin/chromium: `make test` should have installed it")
