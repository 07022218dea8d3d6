"""The finance dashboard in a real browser: sign-in, figures, server-drawn charts, exports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from tests.factories import STAFF_PASSWORD, add_staff
from tests.http.web.pages import csrf, sign_in_staff
from tests.report_history import plan_sale
from warranty.experiment import arms
from warranty.periods.models import ClosedMonth


@pytest.fixture
def page(browser):
    """A fresh page in the shared headless Chromium."""
    context = browser.new_context(accept_downloads=True)
    yield context.new_page()
    context.close()


def _sign_in(page, base: str, email: str) -> None:
    """Sign in through the staff login form."""
    page.goto(f"{base}/staff/reports")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")


def test_dashboard_shows_figures_charts_and_exports(page, live_server, db, tmp_path):
    # ¥3,650 for 365 days (¥10 a day) sold 2026-01-10: by Feb 28 earned 22 + 28 = 50 days.
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))
    add_staff(db, email="books@store.example", role="finance")
    # Events and a checkout that came with visitor ids this service did not sign.
    for day, source, count in ((date(2026, 1, 11), "events", 3), (date(2026, 2, 2), "events", 4),
                               (date(2026, 2, 3), "checkout", 1)):
        arms.count_refused(session=db, day=day, source=source, reason="unsigned",
                                 count=count)
    db.commit()
    errors: list[str] = []
    # Anything the page's Content-Security-Policy blocks shows up as a console error.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and "blocked" in msg.text else None)
    _sign_in(page, live_server, "books@store.example")
    page.goto(f"{live_server}/staff/reports?from=2026-01-01&to=2026-02-28")
    assert page.text_content("#gross-sales") == "¥3,650"
    assert page.text_content("#earned") == "¥500"
    assert page.text_content("#deferred") == "¥3,150"
    assert page.locator("svg rect").count() >= 6  # bars for two months and the legend
    assert page.locator("script").count() == 0
    assert page.text_content("#refused-events") == "7"
    assert page.text_content("#refused-checkouts") == "1"
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    # Changing the period through the form.
    page.fill("input[name=from]", "2026-02-01")
    page.click("form[action='/staff/reports'] button[type=submit]")
    assert page.text_content("#gross-sales") == "¥0"
    assert page.text_content("#earned") == "¥280"
    assert page.text_content("#refused-events") == "4"
    # An export link downloads the CSV.
    with page.expect_download() as info:
        page.click("text=csv >> nth=0")
    text = Path(info.value.path()).read_text()
    assert text.splitlines()[-1].startswith("all,all,0,0,0,0,0,0,0,0,0,280,0,")
    assert errors == []


def test_dashboard_needs_a_finance_or_admin_account(client, db):
    assert client.get("/staff/reports").headers["Location"].startswith("/staff/login")
    add_staff(db, email="desk@store.example", role="staff")
    sign_in_staff(client, email="desk@store.example")
    assert client.get("/staff/reports").status_code == 403
    assert client.get("/staff/reports/export/orders?from=2026-01-01&to=2026-01-31"
                      ).status_code == 403


def test_dashboard_shows_a_bad_period_as_a_message(client, db):
    add_staff(db, email="boss@store.example", role="admin")
    sign_in_staff(client, email="boss@store.example")
    response = client.get("/staff/reports?from=2026-03-01&to=2026-01-01")
    assert response.status_code == 200
    assert b"is after" in response.data


@pytest.mark.parametrize("width", [390, 1280])
def test_finance_closes_the_next_month_after_confirming(browser, live_server, db, tmp_path,
                                                        width):
    # ¥3,650 for 365 days sold 2026-01-10: January is the first month with activity.
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))
    add_staff(db, email="books@store.example", role="finance")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    _sign_in(page, live_server, "books@store.example")
    page.goto(f"{live_server}/staff/reports?from=2026-01-01&to=2026-02-28")
    assert "No month is closed yet" in page.text_content("#books")
    assert page.text_content("#close-next").strip() == "Close 2026-01…"
    page.click("#close-next")
    # The confirmation names what closing does and shows the month's figures now.
    assert page.text_content("h1") == "Close 2026-01?"
    assert "never reopened" in page.text_content("body")
    figures = page.text_content("#month-figures")
    assert "¥3,650" in figures and "¥220" in figures  # gross; 22 days × ¥10 earned
    page.fill("input[name=note]", "reviewed")
    page.click("#confirm-close")
    assert "2026-01 is closed" in page.text_content("#closed-message")
    assert page.text_content("#closed-through") == "2026-01"
    row = page.text_content("tr.closed-month")
    assert "books@store.example" in row and "reviewed" in row and "¥3,650" in row
    assert page.text_content("#close-next").strip() == "Close 2026-02…"
    # Nothing on the page overflows a small screen: wide tables scroll inside it.
    wide = page.evaluate("""w => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll'))
        .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)""", width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide
    page.screenshot(path=str(tmp_path / f"closed-{width}.png"), full_page=True)
    context.close()


def test_closing_is_for_finance_and_admin_and_refusals_are_readable(client, db):
    plan_sale(db, price=3650, sold_on=date(2025, 12, 10))
    add_staff(db, email="desk@store.example", role="staff")
    sign_in_staff(client, email="desk@store.example")
    assert client.get("/staff/reports/close?month=2026-01").status_code == 403
    token = csrf(client, "/staff/claims")
    assert client.post("/staff/reports/close", data={"month": "2026-01",
                                                     "csrf_token": token}).status_code == 403
    other = client.application.test_client()
    add_staff(db, email="boss@store.example", role="admin")
    sign_in_staff(other, email="boss@store.example")
    token = csrf(other, "/staff/reports/close?month=2026-01")
    # Without the form's token nothing is closed.
    assert other.post("/staff/reports/close", data={"month": "2026-01"}).status_code == 400
    # December has activity and is open: the page says so, and nothing is closed.
    refused = other.post("/staff/reports/close", data={"month": "2026-01", "csrf_token": token})
    assert refused.status_code == 409
    assert b"2025-12 has activity and is still open" in refused.data
    assert db.exec(select(ClosedMonth)).all() == []
    db.commit()  # end the read: the next one sees the close (SQLite snapshots)
    done = other.post("/staff/reports/close", data={"month": "2025-12", "csrf_token": token})
    assert done.status_code == 303 and "closed=2025-12" in done.headers["Location"]
    assert db.exec(select(ClosedMonth.closed_by)).all() == ["staff:boss@store.example"]
