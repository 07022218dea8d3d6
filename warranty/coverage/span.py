"""A plan's span: what its price is spread over.

One rule for the refund (warranty.changes.cancellation.quote_refund) and for earned and
deferred revenue (warranty.reports.revenue, whose SQL computes the same numbers): a plan's
price covers the days from the day it was sold to the last day of its term, both counted. For a
plan sold with its product that is the whole term; a plan sold later (post-purchase) has a
shorter span, as its term still counts from the product's purchase (docs/domain/revenue.md).
"""

from __future__ import annotations

from datetime import date, timedelta

from warranty.core.dates import days_inclusive


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
