"""Report endpoints: every report as JSON, CSV or XLSX, streamed, for finance."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from warranty import reports
from warranty.http.api.spec import endpoint
from warranty.http.downloads import respond
from warranty.http.session import get_session


class ReportQuery(BaseModel):
    """The period (ISO dates, both included) and the format."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(alias="from", max_length=40, description="first day, e.g. 2026-01-01")
    to: str = Field(max_length=40, description="last day, e.g. 2026-03-31")
    format: Literal["json", "csv", "xlsx"] = "json"


bp = Blueprint("reports", __name__, url_prefix="/api/v1")


@endpoint(bp, "/reports/<name>", summary="A report for a period as JSON, CSV or XLSX "
          "(finance, journal, contracts, movements, orders, reconciliation, retention, "
          "conversion)", auth="reports", query=ReportQuery, errors=(404,))
def get_report(name: str, query: ReportQuery):
    """Run one report for the period and stream it in the asked format."""
    period = reports.parse_period(query.from_, query.to)
    ctx = reports.Context(session=get_session(), settings=current_app.config["SETTINGS"],
                          period=period)
    return respond(reports.run_report(name, ctx), query.format)
