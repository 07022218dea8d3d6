"""Report endpoints: every report as JSON, CSV or XLSX, streamed, for finance."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field

from warranty import reports
from warranty.http.api.spec import endpoint
from warranty.http.clients import stripe_client
from warranty.http.downloads import respond
from warranty.http.session import get_session
from warranty.reports import export


class ReportQuery(BaseModel):
    """The period (ISO dates, both included) and the format."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(alias="from", max_length=40, description="first day, e.g. 2026-01-01")
    to: str = Field(max_length=40, description="last day, e.g. 2026-03-31")
    format: Literal["json", "csv", "xlsx"] = "json"


class ReportDocument(BaseModel):
    """A report as JSON: the period, the rows (money in minor units of ``currency``) and the
    report's other figures (totals, tests, charts' data) as further fields."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    report: str
    from_: str = Field(alias="from", description="first day, ISO")
    to: str = Field(description="last day, ISO")
    currency: str
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="one object per row, keyed by column")


bp = Blueprint("reports", __name__, url_prefix="/api/v1")


@endpoint(bp, "/reports/<name>", summary="A report for a period as JSON, CSV or XLSX (the "
          "name is one of warranty.reports' registered reports)", auth="reports",
          query=ReportQuery, errors=(404,), response=ReportDocument,
          path_schemas={"name": {"type": "string", "enum": reports.names()}},
          files=("text/csv", export.FORMATS["xlsx"]))
def get_report(name: str, query: ReportQuery):
    """Run one report for the period and stream it in the asked format."""
    period = reports.parse_period(query.from_, query.to)
    ctx = reports.Context(session=get_session(), settings=current_app.config["SETTINGS"],
                          period=period, stripe_client=stripe_client())
    return respond(reports.run_report(name, ctx), query.format)
