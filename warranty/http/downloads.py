"""Streaming a report as JSON, CSV or XLSX."""

from __future__ import annotations

from flask import Response

from warranty import reports
from warranty.reports import export


def respond(result: reports.Result, fmt: str) -> Response:
    """Stream the report; the body is produced while it is sent."""
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = (
            f'attachment; filename="{export.filename(result, fmt)}"')
    return Response(export.chunks(result, fmt), mimetype=export.FORMATS[fmt], headers=headers)
