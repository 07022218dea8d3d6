"""The finance dashboard: report figures, server-drawn charts and export links.

Access: signed-in staff with the finance or admin role (the staff pages' session). The page
carries no script; charts are inline SVG.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, render_template, request

from warranty import money, reports
from warranty.api.reports import respond
from warranty.dates import store_today
from warranty.db import get_session
from warranty.errors import DomainError
from warranty.reports import charts
from warranty.reports.export import FORMATS
from warranty.web import protect
from warranty.web.staff import _require, staff_required

bp = Blueprint("staff_reports", __name__, url_prefix="/staff")
protect(bp)
READ = {"finance", "admin"}
EXPORTS = ["finance", "journal", "contracts", "movements", "orders", "retention"]


@bp.before_request
def _english() -> None:
    """Staff pages are in English."""
    g.lang = "en"


def _period():
    """The asked period, or the last twelve months to today by default."""
    settings = current_app.config["SETTINGS"]
    today = store_today(settings.timezone)
    start = request.args.get("from") or (today.replace(day=1) - timedelta(days=335)).replace(
        day=1).isoformat()
    return reports.parse_period(start, request.args.get("to") or today.isoformat())


@bp.get("/reports")
@staff_required
def dashboard():
    """Finance totals by month and category, charts, retention and export links."""
    _require(READ)
    settings = current_app.config["SETTINGS"]
    session = get_session()
    error = None
    try:
        period = _period()
    except DomainError as exc:
        error, period = exc.message, reports.parse_period(
            store_today(settings.timezone) - timedelta(days=30), store_today(settings.timezone))
    ctx = reports.Context(session=session, settings=settings, period=period)
    finance = reports.run_report("finance", ctx)
    retention = reports.run_report("retention", ctx)
    conversion = reports.run_report("conversion", ctx)
    by_month = finance.extra["by_month"]
    labels = [r["month"] for r in by_month]
    chart_revenue = charts.bar_chart(labels, {
        "gross sales": [r["gross_sales"] for r in by_month],
        "earned revenue": [r["earned_revenue"] for r in by_month],
        "refunds": [r["refunds"] for r in by_month]}, title="Sales and earned revenue")
    chart_deferred = charts.bar_chart(labels, {
        "deferred revenue (month end)": [r["deferred_revenue"] for r in by_month]},
        title="Deferred revenue balance")
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    exports = [{"name": name, "links": [(fmt, f"/staff/reports/export/{name}?"
                                         + urlencode({**query, "format": fmt}))
                                        for fmt in FORMATS]} for name in EXPORTS]
    fmt = lambda amount: money.format_amount(amount, settings.currency)  # noqa: E731
    return render_template("staff/reports.html", period=period, error=error,
                           finance=finance.extra, retention=retention, fmt=fmt,
                           conversion=conversion,
                           chart_revenue=chart_revenue, chart_deferred=chart_deferred,
                           exports=exports)


@bp.get("/reports/export/<name>")
@staff_required
def export(name: str):
    """A report file for the dashboard's links (same access as the page)."""
    _require(READ)
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        raise DomainError(f"format must be one of {sorted(FORMATS)}", code="invalid_format",
                          status=422)
    ctx = reports.Context(session=get_session(), settings=current_app.config["SETTINGS"],
                          period=reports.parse_period(request.args.get("from"),
                                                      request.args.get("to")))
    return respond(reports.run_report(name, ctx), fmt)
