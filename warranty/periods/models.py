"""Closed months."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from warranty.db.types import json_field, ts_field


class ClosedMonth(SQLModel, table=True):
    """A month finance closed: no money fact is booked in it, or any month before it, again.

    Closing a month closes every earlier month too (they must have had no open activity);
    ``figures`` are the month's finance totals as they stood at the close, which every later
    report of the month reproduces (warranty.periods).
    """

    __tablename__ = "closed_month"

    month: date = Field(primary_key=True)  # its first day
    closed_at: datetime = ts_field()
    closed_by: str = Field(max_length=200)
    note: str = Field(default="", max_length=1000)
    figures: dict = json_field()  # minor units: the month's finance totals at the close
