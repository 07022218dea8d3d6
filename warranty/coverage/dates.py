"""Coverage dates of a plan: its term, when breakdown and accident cover start, the waiting
period of a plan bought later (pure functions of dates; the rules: docs/domain/coverage.md)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from warranty.core.dates import add_months, days_inclusive, term_end

WAITING_PERIOD_DAYS = 30  # plans bought after the product: no claims in the first 30 days


@dataclass(frozen=True)
class CoverageDates:
    """When a plan's term and each kind of cover start and end."""

    purchase_date: date  # product purchase date; the term counts from it
    term_end: date  # last covered day, inclusive
    breakdown_start: date  # day after the manufacturer's warranty ends
    accident_start: date | None  # None for standard (breakdown-only) plans
    waiting_until: date | None  # first day a claim's incident may fall on, if later

    @property
    def term_days(self) -> int:
        """Days of the term, purchase date and last day included."""
        return days_inclusive(self.purchase_date, self.term_end)


@functools.lru_cache(maxsize=4096)  # pure; offers ask for the same few plans all day
def coverage_dates(*, purchase_date: date, term_months: int, manufacturer_months: int,
                   coverage: str, plan_sold_on: date | None = None) -> CoverageDates:
    """Dates for a plan on a product bought on ``purchase_date``.

    A plan bought later through the post-purchase link (``plan_sold_on`` given, even on the
    purchase day) keeps the term from the purchase date but has a waiting period.
    """
    waiting_until = None
    if plan_sold_on is not None:
        waiting_until = plan_sold_on + timedelta(days=WAITING_PERIOD_DAYS)
    breakdown_start = add_months(purchase_date, manufacturer_months)
    accident_start = None
    if coverage == "accident":
        accident_start = max(purchase_date, waiting_until or purchase_date)
    if waiting_until is not None:
        breakdown_start = max(breakdown_start, waiting_until)
    return CoverageDates(
        purchase_date=purchase_date,
        term_end=term_end(purchase_date, term_months),
        breakdown_start=breakdown_start,
        accident_start=accident_start,
        waiting_until=waiting_until,
    )


def coverage_year(purchase_date: date, incident: date) -> int:
    """Coverage year (1-based) of an incident: year 1 is the first 12 months from purchase."""
    year = 1
    while add_months(purchase_date, 12 * year) <= incident:
        year += 1
    return year


@dataclass(frozen=True)
class CoverageYear:
    """One coverage year of a plan's term and its liability cap percentage."""

    year: int  # 1-based: year 1 is the first 12 months from purchase
    first_day: date
    last_day: date  # inclusive; the last year ends with the term
    percent: Decimal  # cap as a percentage of the product price


def coverage_years(*, purchase_date: date, term_end: date,
                   schedule: list | tuple) -> list[CoverageYear]:
    """The coverage years a plan's term has, each with its cap percentage.

    Only the years the term reaches: a 36-month plan has three, whatever the length of the
    category's schedule (whose last value holds for later years).
    """
    schedule = list(schedule) or ["100"]
    years = []
    for year in range(1, coverage_year(purchase_date, term_end) + 1):
        first = add_months(purchase_date, 12 * (year - 1))
        last = min(add_months(purchase_date, 12 * year) - timedelta(days=1), term_end)
        percent = Decimal(str(schedule[min(year, len(schedule)) - 1]))
        years.append(CoverageYear(year=year, first_day=first, last_day=last, percent=percent))
    return years
