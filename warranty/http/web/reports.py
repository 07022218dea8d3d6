"""The finance dashboard: report figures, server-drawn charts, export links, background
exports, month closes.

Access: signed-in staff holding the ``reports`` permission (finance, admin; the staff pages'
session), who may also close the next month (a confirmation page, then a POST;
warranty.periods). The page carries no script; charts are inline SVG (warranty.reports.charts)
built by warranty.http.web.dashboard from the same report results the API serves.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from warranty import reports
from warranty.auth import roles
from warranty.closing import months as closing
from warranty.core import money
from warranty.core.dates import store_today
from warranty.core.errors import DomainError, ValidationFailed
from warranty.exports import services as exports_jobs
from warranty.http.babel import error_text, page_language
from warranty.http.clients import stripe_client
from warranty.http.downloads import respond
from warranty.http.errors import status_of
from warranty.http.session import get_session
from warranty.http.web import dashboard as figures
from warranty.http.web.pages import protect
from warranty.http.web.staff import staff_required
from warranty.periods import booking as periods
from warranty.reports.export import FORMATS

bp = Blueprint("staff_reports", __name__, url_prefix="/staff")
protect(bp)
EXPORTS = ["finance", "journal", "contracts", "movements", "orders", "retention"]


REFRESH_SECONDS = 3  # the exports page reloads itself this often while a job runs


@bp.app_context_processor
def _report_helpers() -> dict:
    """Percentages and export progress for the report templates."""
    return {"percent": figures.percent, "job_percent": exports_jobs.percent}


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
    results = {name: reports.run_report(name, ctx)
               for name in ("finance", "conversion", "attach", "retention", "nps")}
    lang = page_language()
    builder = figures.Builder(lang, settings.currency)
    query = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    exports = [{"name": name, "links": [(fmt, f"/staff/reports/export/{name}?"
                                         + urlencode({**query, "format": fmt}))
                                        for fmt in FORMATS]} for name in EXPORTS]
    fmt = lambda amount: money.format_amount(amount, settings.currency)  # noqa: E731
    today = store_today(settings.timezone)
    books = closing.state(session, today)
    return render_template("staff/reports.html", period=period, error=error,
                           finance=results["finance"].extra, conversion=results["conversion"],
                           sections=figures.build(lang, settings.currency, results),
                           label=builder.label, fmt=fmt, exports=exports, books=books,
                           whole=exports_jobs.whole_store(session, today),
                           background_reports=exports_jobs.REPORTS,
                           jobs=exports_jobs.recent_jobs(session, limit=5),
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


@bp.post("/reports/exports")
@staff_required(permission="reports")
def start_export():
    """Start a background export (whole store by default); then the exports page."""
    session = get_session()
    period = reports.parse_period(request.form.get("from"), request.form.get("to"))
    job = exports_jobs.start_export(session=session, report=request.form.get("report", ""),
                                    fmt=request.form.get("format", ""), period=period,
                                    requested_by=f"staff:{g.staff.email}")
    session.commit()
    return redirect(url_for("staff_reports.exports", started=job.public_id), 303)


@bp.get("/reports/exports")
@staff_required(permission="reports")
def exports():
    """Background exports, newest first, with their progress; reloads itself while one is
    waiting or running (no script: a refresh header)."""
    jobs = exports_jobs.recent_jobs(get_session(), limit=50)
    return render_template("staff/exports.html", jobs=jobs,
                           started=request.args.get("started"),
                           refresh=REFRESH_SECONDS if exports_jobs.is_active(jobs) else None)


@bp.get("/reports/exports/<export_id>/file")
@staff_required(permission="reports")
def export_file(export_id: str):
    """A finished export's file, as a download."""
    job = exports_jobs.get_job(get_session(), export_id)
    path = exports_jobs.file_path(current_app.config["SETTINGS"], job)
    return send_file(path, mimetype=FORMATS[job.format], as_attachment=True,
                     download_name=exports_jobs.download_name(job), max_age=0)
