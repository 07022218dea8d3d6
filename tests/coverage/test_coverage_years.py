"""The coverage years of a plan's term, each with its cap percentage."""

from datetime import date
from decimal import Decimal

from warranty.coverage.dates import coverage_years


def test_a_36_month_plan_has_three_years_whatever_the_schedule_length():
    years = coverage_years(purchase_date=date(2026, 1, 10), term_end=date(2029, 1, 9),
                           schedule=[100, 100, 80, 70, 60])
    assert [(y.year, y.first_day, y.last_day, y.percent) for y in years] == [
        (1, date(2026, 1, 10), date(2027, 1, 9), Decimal(100)),
        (2, date(2027, 1, 10), date(2028, 1, 9), Decimal(100)),
        (3, date(2028, 1, 10), date(2029, 1, 9), Decimal(80)),
    ]


def test_the_last_value_of_a_short_schedule_holds_for_later_years():
    years = coverage_years(purchase_date=date(2026, 1, 10), term_end=date(2031, 1, 9),
                           schedule=["90", "75.5"])
    assert [y.percent for y in years] == [Decimal("90"), Decimal("75.5"), Decimal("75.5"),
                                          Decimal("75.5"), Decimal("75.5")]


def test_a_term_that_is_not_whole_years_ends_its_last_year_with_the_term():
    # 18 months from Jan 31: month ends clamp (Jul 31 - 1 day), year 2 is 6 months.
    years = coverage_years(purchase_date=date(2026, 1, 31), term_end=date(2027, 7, 30),
                           schedule=[])
    assert [(y.year, y.first_day, y.last_day, y.percent) for y in years] == [
        (1, date(2026, 1, 31), date(2027, 1, 30), Decimal(100)),
        (2, date(2027, 1, 31), date(2027, 7, 30), Decimal(100)),
    ]
