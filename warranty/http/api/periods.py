"""Closed months: finance lists the closes and closes the next month (warranty.periods)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, current_app, g
from pydantic import BaseModel, Field

from warranty.closing import months as closing
from warranty.core.dates import store_today
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session
from warranty.periods import booking as periods

bp = Blueprint("periods", __name__, url_prefix="/api/v1")


class ClosedMonthOut(BaseModel):
    """One close: the month, who closed it and when, and its figures as they were then."""

    month: str = Field(description="YYYY-MM")
    closed_at: datetime
    closed_by: str
    note: str
    figures: dict[str, Any] = Field(description="the month's finance totals at the close "
                                                "(minor units), which its reports keep showing")


class PeriodsOut(BaseModel):
    """The closes, newest first, the first open day and the month to close next."""

    closed_through: str | None = Field(description="the last closed month (every month up to "
                                                   "it is closed), or null")
    first_open_day: date | None
    next_to_close: str | None = Field(description="the first open month with activity, once "
                                                  "it has ended")
    closed: list[ClosedMonthOut]


class CloseBody(BaseModel):
    """An optional note kept with the close."""

    note: str = Field(default="", max_length=1000)


def _out(row) -> dict:
    """A close as the API shows it."""
    return {"month": periods.month_key(row.month), "closed_at": row.closed_at,
            "closed_by": row.closed_by, "note": row.note, "figures": row.figures}


@endpoint(bp, "/periods", summary="Closed months and the month to close next", auth="reports",
          response=PeriodsOut)
def list_periods():
    """Every close with its figures, the first open day and the next month to close."""
    settings = current_app.config["SETTINGS"]
    return PeriodsOut(**closing.state(get_session(), store_today(settings.timezone)))


@endpoint(bp, "/periods/<month>/close", method="POST",
          summary="Close a month (YYYY-MM) and every month before it", auth="close_periods",
          body=CloseBody, response=ClosedMonthOut, status=201, errors=(409, 422))
def close_month(month: str, body: CloseBody):
    """From now on nothing is booked in the month; later changes become adjustments."""
    settings = current_app.config["SETTINGS"]
    session = get_session()
    row = closing.close_month(session=session, settings=settings,
                              month=periods.parse_month(month),
                              today=store_today(settings.timezone), actor=g.actor,
                              note=body.note)
    session.commit()
    return ClosedMonthOut(**_out(row))
