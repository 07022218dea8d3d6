"""The finance dashboard and the background export flow in a real browser, at phone and
desktop widths, in Japanese and English, on a year of synthetic history: every proof figure
is on the page with the API's numbers, each chart takes the page's width with text at the
page's size and has its table, and an export started on the page is downloaded when the
worker has written it. Screenshots go to artifacts/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from devtools import synth
from tests.factories import STAFF_PASSWORD, add_staff
from warranty.exports import services as jobs

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FROM, TO = "2025-01-01", "2025-12-31"
CASES = [(width, lang) for width in (390, 1280) for lang in ("ja", "en")]


@pytest.fixture
def history(settings, db):
    """A year of a small store (the demo's kind of history: the holdout offered no plans)."""
    synth.generate(settings.database_url, orders=1200, plans=300, start=date(2025, 1, 1),
                   days=365, seed=7, log=lambda text: None, holdout_lost_share=0.15)
    add_staff(db, email="books@store.example", role="finance")
    db.commit()


def _page(browser, base: str, width: int, lang: str, path: str):
    """A signed-in finance page at ``width`` in ``lang``; CSP violations are collected."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    page.errors = []
    # Anything the Content-Security-Policy blocks shows up as a console error.
    page.on("console", lambda msg: page.errors.append(msg.text)
            if msg.type == "error" and "blocked" in msg.text.lower() else None)
    page.goto(f"{base}/staff/login")
    page.fill("input[name=email]", "books@store.example")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
    return context, page


def _api(client, headers, name: str) -> dict:
    """A report's JSON for the period, from the API."""
    res = client.get(f"/api/v1/reports/{name}?from={FROM}&to={TO}", headers=headers)
    assert res.status_code == 200
    return res.json


def _pct(rate, places=1) -> str:
    return f"{rate * 100:.{places}f}%"


def _yen(amount) -> str:
    return f"¥{amount:,}"


@pytest.mark.parametrize(("width", "lang"), CASES)
def test_the_dashboard_shows_the_proof_with_the_apis_numbers(browser, live_server, client,
                                                              staff_headers, history, width,
                                                              lang, request):
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = _page(browser, live_server, width, lang,
                          f"/staff/reports?from={FROM}&to={TO}")
    assert page.locator("html").get_attribute("lang") == lang
    assert page.text_content("h1") == {"ja": "保証レポート", "en": "Warranty reports"}[lang]
    conversion = _api(client, staff_headers, "conversion")
    arms = {r["arm"]: r for r in conversion["rows"]}
    for arm in ("treatment", "holdout"):
        assert page.text_content(f"#conv-rate-{arm}") == _pct(arms[arm]["conversion_rate"], 2)
        assert page.text_content(f"#aov-{arm}") == _yen(arms[arm]["average_order_value"])
        assert page.text_content(f"#rpv-{arm}") == _yen(arms[arm]["revenue_per_visitor"])
    test = conversion["tests"]["conversion_rate"]
    unit = {"ja": "ポイント", "en": " pt"}[lang]
    assert page.text_content("#conv-diff") == f"{test['difference'] * 100:+.2f}{unit}"
    assert page.text_content("#conv-ci") == (f"{test['ci_low'] * 100:+.2f}{unit} – "
                                             f"{test['ci_high'] * 100:+.2f}{unit}")
    # The demo's kind of history shows the lift: the interval is above zero.
    assert test["ci_low"] > 0
    attach = {(r["dimension"], r["key"]): r for r in _api(client, staff_headers,
                                                          "attach")["rows"]}
    for (dimension, key), row in attach.items():
        if dimension in ("placement", "category"):
            assert page.text_content(f"#attach-{dimension}-{key}") == _pct(
                row["attach_rate_units"])
    retention = _api(client, staff_headers, "retention")
    totals = {r["group"]: r for r in retention["rows"] if r["cohort"] == "all"}
    for group in ("with_plan", "without_plan"):
        assert page.text_content(f"#repeat-90-{group}") == _pct(totals[group]["repeat_90_rate"])
        assert page.text_content(f"#cohort-{group}-all-m1") == _pct(
            totals[group]["retention_m1"])
        ltv = retention["ltv"][group]["ltv"]
        assert page.text_content(f"#ltv-{group}") == (_yen(ltv) if ltv is not None else "—")
    nps = next(r for r in _api(client, staff_headers, "nps")["rows"] if r["status"] == "all")
    assert page.text_content("#nps-all") == f"{nps['nps']:+.1f}"
    total = _api(client, staff_headers, "finance")["total"]
    assert page.text_content("#gross-sales") == _yen(total["gross_sales"])
    assert page.text_content("#deferred") == _yen(total["deferred_revenue"])
    assert page.text_content("#loss-ratio") == _pct(total["loss_ratio"])
    assert page.text_content("#cancellation-rate") == _pct(total["cancellation_rate"])
    # Every chart: drawn by the server, the page's width, text at the page's size, a table.
    figures = page.locator("figure.report-figure")
    assert figures.count() == 12
    for index in range(figures.count()):
        figure = figures.nth(index)
        assert figure.locator("svg.chart").count() == 1
        assert figure.locator("table tbody tr").count() >= 1
        chart = figure.locator("svg.chart").bounding_box()
        box = figure.bounding_box()
        assert chart["width"] >= box["width"] - 40, figure.get_attribute("id")
    sizes = page.evaluate("""() => [...document.querySelectorAll('svg.chart text')]
        .filter(t => t.getBoundingClientRect().width > 0)
        .map(t => parseFloat(getComputedStyle(t).fontSize))""")
    assert sizes and min(sizes) >= 14
    assert page.locator("script").count() == 0
    assert page.errors == []
    # Nothing overflows a phone: wide tables scroll inside their box.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # Visible chart labels never run past the chart's edges.
    outside = page.evaluate("""() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')].filter(t => {
          const r = t.getBoundingClientRect();
          return r.width > 0 && (r.left < box.left - 1 || r.right > box.right + 1);
        }).map(t => t.textContent);
    })""")
    assert outside == []
    backend = request.node.callspec.id.split("-")[0]
    page.screenshot(path=str(ARTIFACTS / f"finance-dashboard-{backend}-{width}-{lang}.png"),
                    full_page=True)
    context.close()


@pytest.mark.parametrize(("width", "lang"), CASES)
def test_an_export_started_on_the_page_is_downloaded_when_ready(browser, live_server, client,
                                                                staff_headers, settings,
                                                                history, width, lang,
                                                                request, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    context, page = _page(browser, live_server, width, lang, "/staff/reports")
    page.select_option("select[name=report]", "orders")
    page.select_option("select[name=format]", "xlsx")
    start, end = page.input_value("form.export-form input[name=from]"), page.input_value(
        "form.export-form input[name=to]")
    assert start == "2025-01-01"  # the whole store: from its first booking
    page.click("#start-export")
    page.wait_for_url("**/staff/reports/exports?started=*")
    waiting = {"ja": "待機中", "en": "Waiting"}[lang]
    assert waiting in page.text_content("#export-jobs .job-status")
    assert page.locator("#auto-refresh").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # The worker writes it; the page, reloading itself, then offers the file.
    assert jobs.run_exports(settings=settings) == 1
    page.locator("#export-jobs a.download").wait_for(timeout=15_000)
    assert page.locator("#auto-refresh").count() == 0
    assert page.locator("#export-jobs progress").get_attribute("value") == "100"
    backend = request.node.callspec.id.split("-")[0]
    page.screenshot(path=str(ARTIFACTS / f"finance-exports-{backend}-{width}-{lang}.png"),
                    full_page=True)
    with page.expect_download() as info:
        page.click("#export-jobs a.download")
    assert info.value.suggested_filename == f"orders_{start}_{end}.xlsx"
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    book = load_workbook(saved, read_only=True)  # read-only keeps the file open: close it
    rows = list(book.active.iter_rows(values_only=True))
    book.close()
    api = client.get(f"/api/v1/reports/orders?from={start}&to={end}&format=csv",
                     headers=staff_headers).get_data(as_text=True)
    assert len(rows) == len(api.splitlines())
    assert list(rows[0]) == api.splitlines()[0].split(",")
    assert page.errors == []
    context.close()
