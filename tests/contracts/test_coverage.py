"""Coverage dates per the brief."""

from datetime import date

from warranty.core.dates import add_months, store_today, term_end
from warranty.coverage.dates import coverage_dates, coverage_year


def test_month_end_clamps():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def test_brief_example_36_months():
    dates = coverage_dates(purchase_date=date(2026, 1, 10), term_months=36,
                           manufacturer_months=12, coverage="standard")
    assert dates.term_end == date(2029, 1, 9)
    assert dates.term_days == 1096
    assert dates.breakdown_start == date(2027, 1, 10)
    assert dates.accident_start is None
    assert dates.waiting_until is None


def test_accident_cover_starts_at_purchase():
    dates = coverage_dates(purchase_date=date(2026, 3, 1), term_months=24,
                           manufacturer_months=12, coverage="accident")
    assert dates.accident_start == date(2026, 3, 1)
    assert dates.term_end == date(2028, 2, 29)


def test_post_purchase_plan_waits_30_days():
    dates = coverage_dates(purchase_date=date(2026, 1, 10), term_months=36,
                           manufacturer_months=12, coverage="accident",
                           plan_sold_on=date(2026, 2, 20))
    assert dates.waiting_until == date(2026, 3, 22)
    assert dates.accident_start == date(2026, 3, 22)
    assert dates.term_end == date(2029, 1, 9)  # the term still counts from purchase


def test_coverage_years():
    bought = date(2026, 1, 10)
    assert coverage_year(bought, date(2026, 1, 10)) == 1
    assert coverage_year(bought, date(2027, 1, 9)) == 1
    assert coverage_year(bought, date(2027, 1, 10)) == 2
    assert coverage_year(bought, term_end(bought, 36)) == 3


def test_store_today_uses_store_zone():
    from datetime import UTC, datetime
    # 2026-01-09 20:00 UTC is already 2026-01-10 in Tokyo.
    now = datetime(2026, 1, 9, 20, 0, tzinfo=UTC)
    assert store_today("Asia/Tokyo", now) == date(2026, 1, 10)
    assert store_today("America/New_York", now) == date(2026, 1, 9)
