"""The finance dashboard: report figures, server-drawn charts, export links, month closes.

Access: signed-in staff holding the ``reports`` permission (finance, admin; the staff pages'
session), who may also close the next month (a confirmation page, then a POST;
warranty.periods). The page carries no script; charts are inline SVG.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for

from warranty import reports
from warranty.auth import roles
from warranty.closing import months as closing
from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import DomainError, ValidationFailed
from warranty.http.babel import error_text
from warranty.http.clients import stripe_client
from warranty.http.downloads import respond
from warranty.http.errors import status_of
from warranty.http.session import get_session
from warranty.http.web.pages import protect
from warranty.http.web.staff import staff_required
from warranty.periods import booking as periods
from warranty.reports import charts
from warranty.reports.export import FORMATS

bp = Blueprint("staff_reports", __name__, url_prefix="/staff")
protect(bp)
EXPORTS = ["finance", "journal", "contracts", "movements", "orders", "retention"]


def _period():
    """The asked period, or the last twelve months to today by default."""
    settings = current_app.config["SETTINGS"]
    today = store_today(settings.timezone)
    start = request.args.get("from") or (today.replace(day=1) - timedelta(days=335)).replace(
        day=1).isoformat()
    return reports.parse_period(start, request.args.get("to") or today.isoformat())


@bp.get("/reports")
@staff_required(permission="reports")
def dashboard():
    """Finance totals by month and category, charts, retention and export links."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    error = None
    try:
        period = _period()
    except DomainError as exc:
        error, period = exc.message, reports.parse_period(
            store_today(settings.timezone) - timedelta(days=30), store_today(settings.timezone))
    ctx = reports.Context(session=session, settings=settings, period=period,
                          stripe_client=stripe_client())
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
    books = closing.state(session, store_today(settings.timezone))
    return render_template("staff/reports.html", period=period, error=error,
                           finance=finance.extra, retention=retention, fmt=fmt,
                           conversion=conversion,
                           chart_revenue=chart_revenue, chart_deferred=chart_deferred,
                           exports=exports, books=books,
                           can_close=roles.may(g.staff.role, "close_periods"),
                           closed=request.args.get("closed"))


def _render_close(month, *, error: str | None = None, status: int = 200):
    """The confirmation page for closing ``month``, with its figures as they stand now."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    figures = closing.month_figures(session, month, settings.timezone)
    fmt = lambda amount: money.format_amount(amount, settings.currency)  # noqa: E731
    return render_template("staff/close_month.html", month=periods.month_key(month),
                           figures=figures, fmt=fmt, error=error,
                           books=closing.state(session, store_today(settings.timezone))
                           ), status


@bp.get("/reports/close")
@staff_required(permission="close_periods")
def confirm_close():
    """Confirm closing a month: what it closes, its figures, what happens afterwards."""
    return _render_close(periods.parse_month(request.args.get("month", "")))


@bp.post("/reports/close")
@staff_required(permission="close_periods")
def close_month():
    """Close the month confirmed on the previous page."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    month = periods.parse_month(request.form.get("month", ""))
    try:
        closing.close_month(session=session, settings=settings, month=month,
                            today=store_today(settings.timezone),
                            actor=f"staff:{g.staff.email}", note=request.form.get("note", ""))
        session.commit()
    except DomainError as exc:
        session.rollback()
        status = status_of(exc)
        return _render_close(month, error=error_text(exc.code, exc.message, status),
                             status=status)
    return redirect(url_for("staff_reports.dashboard", closed=periods.month_key(month)), 303)


@bp.get("/reports/export/<name>")
@staff_required(permission="reports")
def export(name: str):
    """A report file for the dashboard's links (same access as the page)."""
    fmt = request.args.get("format", "csv")
    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {sorted(FORMATS)}",
                               code="invalid_format")
    ctx = reports.Context(session=get_session(), settings=current_app.config["SETTINGS"],
                          stripe_client=stripe_client(),
                          period=reports.parse_period(request.args.get("from"),
                                                      request.args.get("to")))
    return respond(reports.run_report(name, ctx), fmt)
