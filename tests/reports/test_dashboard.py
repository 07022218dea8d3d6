"""The finance dashboard in a real browser: figures, server-drawn charts, export links."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from tests.report_history import plan_sale
from warranty.web.reports import reports_link

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]


@pytest.fixture
def page():
    """A Chromium page (skipped without Chromium unless WARRANTY_REQUIRE_BROWSER=1)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("WARRANTY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and WARRANTY_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page()
        browser.close()


def test_dashboard_shows_figures_charts_and_exports(page, live_server, settings, db,
                                                    tmp_path):
    # ¥3,650 for 365 days (¥10 a day) sold 2026-01-10: by Feb 28 earned 22 + 28 = 50 days.
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))
    link = reports_link(settings.model_copy(update={"base_url": live_server}))
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(link + "&from=2026-01-01&to=2026-02-28")
    assert page.text_content("#gross-sales") == "¥3,650"
    assert page.text_content("#earned") == "¥500"
    assert page.text_content("#deferred") == "¥3,150"
    assert page.locator("svg rect").count() >= 6  # bars for two months and the legend
    assert page.locator("script").count() == 0
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    # Changing the period through the form keeps the link's access.
    page.fill("input[name=from]", "2026-02-01")
    page.click("button[type=submit]")
    assert page.text_content("#gross-sales") == "¥0"
    assert page.text_content("#earned") == "¥280"
    # An export link downloads the CSV.
    with page.expect_download() as info:
        page.click("text=csv >> nth=0")
    text = Path(info.value.path()).read_text()
    assert text.splitlines()[-1].startswith("all,all,0,0,0,0,0,280,")
    assert errors == []


def test_dashboard_refuses_missing_and_forged_access(client):
    assert client.get("/staff/reports").status_code == 401
    forged = client.get("/staff/reports?token=abc.def")
    assert forged.status_code == 403 and b"not valid" in forged.data


def test_dashboard_shows_a_bad_period_as_a_message(client, settings, staff_headers):
    response = client.get("/staff/reports?from=2026-03-01&to=2026-01-01",
                          headers={**staff_headers, "Accept": "text/html"})
    assert response.status_code == 200
    assert b"is after" in response.data
