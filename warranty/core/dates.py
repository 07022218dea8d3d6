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


# --- a plan's span: what its price is spread over ----------------------------------------
# One rule for the refund (warranty.changes.cancellation.quote_refund) and for earned and
# deferred revenue (warranty.reports.revenue, whose SQL computes the same numbers): a
# plan's price covers the days from the day it was sold to the last day of its term, both
# counted. For a plan sold with its product that is the whole term; a plan sold later
# (post-purchase) has a shorter span, as its term still counts from the product's purchase.


def plan_span(sold_on: date, term_end: date) -> int:
    """Days from the plan's sale date to its term end, both counted."""
    return days_inclusive(sold_on, term_end)


def span_days_elapsed(sold_on: date, term_end: date, day: date) -> int:
    """Days of the span gone by the end of ``day`` (0 before the sale, the span after it)."""
    return min(max(days_inclusive(sold_on, day), 0), plan_span(sold_on, term_end))


def span_days_unused(sold_on: date, term_end: date, day: date) -> int:
    """Days of the span from ``day`` (included) to the term end: span − elapsed by day − 1."""
    return plan_span(sold_on, term_end) - span_days_elapsed(sold_on, term_end,
                                                             day - timedelta(days=1))
