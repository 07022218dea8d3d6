"""Calendar dates in the store's time zone; timestamps in UTC."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def store_today(timezone: str, now: datetime | None = None) -> date:
    """Today's calendar date in the store's time zone."""
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(start: date, months: int) -> date:
    """``start`` plus whole months, clamping to month end (Jan 31 + 1 month = Feb 28)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def term_end(start: date, months: int) -> date:
    """Last covered day of a term of ``months`` from ``start`` (inclusive)."""
    return add_months(start, months) - timedelta(days=1)


def days_inclusive(first: date, last: date) -> int:
    """Number of calendar days from ``first`` to ``last``, both counted."""
    return (last - first).days + 1
