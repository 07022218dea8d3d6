"""The background exports' pages over HTTP: start (CSRF, finance only), progress, download."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from tests.factories import add_staff
from tests.http.web.pages import csrf, sign_in_staff
from tests.report_history import plan_sale
from warranty.exports import services as jobs
from warranty.exports.models import ExportJob


def _finance(client, db) -> str:
    """A signed-in finance account; the CSRF token of its session."""
    add_staff(db, email="books@store.example", role="finance")
    sign_in_staff(client, email="books@store.example")
    return csrf(client, "/staff/reports?from=2026-01-01&to=2026-03-31")


def test_finance_starts_an_export_follows_it_and_downloads_it(client, db, settings,
                                                              staff_headers):
    plan_sale(db, price=3650, sold_on=date(2026, 1, 10))
    token = _finance(client, db)
    dashboard = client.get("/staff/reports?from=2026-01-01&to=2026-03-31").get_data(
        as_text=True)
    # The form offers the whole store: from the first booking to today.
    assert 'name="from" value="2026-01-10"' in dashboard
    started = client.post("/staff/reports/exports", data={
        "csrf_token": token, "report": "orders", "format": "csv", "from": "2026-01-01",
        "to": "2026-03-31"})
    assert started.status_code == 303
    assert started.headers["Location"].startswith("/staff/reports/exports?started=exp_")
    waiting = client.get(started.headers["Location"])
    page = waiting.get_data(as_text=True)
    assert waiting.status_code == 200 and 'http-equiv="refresh"' in page
    assert "Waiting" in page and "/file" not in page
    job = db.exec(select(ExportJob)).one()
    assert (job.requested_by, job.report, job.format) == ("staff:books@store.example",
                                                          "orders", "csv")
    assert jobs.run_exports(settings=settings) == 1
    ready = client.get("/staff/reports/exports").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in ready and "Ready" in ready
    link = f"/staff/reports/exports/{job.public_id}/file"
    assert link in ready
    with client.get(link) as download:
        assert download.status_code == 200
        assert download.headers["Content-Disposition"] == (
            "attachment; filename=orders_2026-01-01_2026-03-31.csv")
        body = download.data
    api = client.get("/api/v1/reports/orders?from=2026-01-01&to=2026-03-31&format=csv",
                     headers=staff_headers)
    assert body == api.data
    # The dashboard lists it too, in Japanese when asked.
    japanese = client.get("/staff/reports?lang=ja").get_data(as_text=True)
    assert "完成" in japanese and link in japanese


def test_refusals_are_readable_pages(client, db):
    token = _finance(client, db)
    bad = client.post("/staff/reports/exports", data={
        "csrf_token": token, "report": "finance", "format": "csv", "from": "2026-01-01",
        "to": "2026-03-31"})
    assert bad.status_code == 422
    assert "text/html" in bad.headers["Content-Type"]
    assert "report must be one of orders, contracts, movements" in bad.get_data(as_text=True)
    bad_period = client.post("/staff/reports/exports", data={
        "csrf_token": token, "report": "orders", "format": "csv", "from": "2026-03-01",
        "to": "2026-01-01"})
    assert bad_period.status_code == 422
    assert client.post("/staff/reports/exports", data={"report": "orders"}).status_code == 400
    assert client.get("/staff/reports/exports/exp_nope/file").status_code == 404
    assert db.exec(select(ExportJob)).all() == []


def test_a_file_is_there_only_once_done(client, db, settings):
    token = _finance(client, db)
    client.post("/staff/reports/exports", data={
        "csrf_token": token, "report": "movements", "format": "xlsx", "from": "2026-01-01",
        "to": "2026-03-31"})
    job = db.exec(select(ExportJob)).one()
    assert client.get(f"/staff/reports/exports/{job.public_id}/file").status_code == 404


def test_support_can_neither_start_nor_download(client, db, settings):
    add_staff(db, email="desk@store.example", role="support")
    sign_in_staff(client, email="desk@store.example")
    token = csrf(client, "/staff/claims")
    assert client.post("/staff/reports/exports", data={
        "csrf_token": token, "report": "orders", "format": "csv"}).status_code == 403
    assert client.get("/staff/reports/exports").status_code == 403
    assert db.exec(select(ExportJob)).all() == []
