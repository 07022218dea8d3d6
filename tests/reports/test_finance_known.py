"""The finance report on small known histories, every figure computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tests.report_history import payout, plan_sale
from warranty.reports.period import parse_period
from warranty.reports.revenue import finance


def _jpy_history(db) -> None:
    """Four JPY plans around Jan-Mar 2026 (see the arithmetic in the test)."""
    # A: ¥3,650 for 12 months from 2026-01-10: term to 2027-01-09 = 365 days → ¥10 a day.
    (a,) = plan_sale(db, price=3650, sold_on=date(2026, 1, 10), category="electronics")
    # A claim on A paid ¥5,000 at 2026-02-28 20:00 UTC = 2026-03-01 05:00 in Tokyo: March.
    payout(db, a, amount=5000, paid_at=datetime(2026, 2, 28, 20, 0, tzinfo=UTC))
    # B: ¥7,300 from 2026-01-20 (365 days → ¥20 a day), cancelled 2026-02-25 after the
    # 30-day free look: 36 days used (Jan 20..Feb 24), 329 unused;
    # refund = 7300 × 329 / 365 = 6580, less a ¥500 fee = ¥6,080.
    plan_sale(db, price=7300, sold_on=date(2026, 1, 20), category="appliances",
              cancel=(date(2026, 2, 25), 6080))
    # C: ¥2,980 for 36 months from 2026-01-30: 2026-01-30..2029-01-29 = 1,096 days;
    # cancelled in the free look on 2026-02-05 with a full refund of ¥2,980.
    plan_sale(db, price=2980, sold_on=date(2026, 1, 30), term_months=36,
              category="electronics", cancel=(date(2026, 2, 5), 2980))
    # D: ¥10,950 from 2025-12-01 (365 days → ¥30 a day), sold before the period.
    plan_sale(db, price=10950, sold_on=date(2025, 12, 1), category="electronics")


def test_jpy_finance_by_month_category_and_total(db):
    _jpy_history(db)
    report = finance(session=db, period=parse_period("2026-01-01", "2026-03-31"),
                     timezone="Asia/Tokyo")
    months = {r["month"]: r for r in report["by_month"]}
    # Gross in January: A 3,650 + B 7,300 + C 2,980 = 13,930 for 3 plans.
    assert (months["2026-01"]["plans_sold"], months["2026-01"]["gross_sales"]) == (3, 13930)
    # Earned in January: A 22 days × 10 = 220; B 12 days × 20 = 240;
    # C 2 days: 2980 × 2 // 1096 = 5960 // 1096 = 5; D 31 days × 30 = 930 → 1,395.
    assert months["2026-01"]["earned_revenue"] == 1395
    # Deferred opening (Dec 31): D 10,950 − 31 × 30 = 10,020.
    assert months["2026-01"]["deferred_opening"] == 10020
    # Deferred at Jan 31: A 3,650 − 220 = 3,430; B 7,300 − 240 = 7,060; C 2,980 − 5 = 2,975;
    # D 10,950 − 62 × 30 = 9,090 → 22,555.
    assert months["2026-01"]["deferred_revenue"] == 22555
    # February refunds: B 6,080 + C 2,980 = 9,060 (2 cancellations, none sold: no rate).
    feb = months["2026-02"]
    assert (feb["refunds"], feb["cancellations"], feb["net_sales"]) == (9060, 2, -9060)
    assert feb["cancellation_rate"] is None
    # Earned in February: A 28 × 10 = 280; B on its cancel date has earned
    # 7,300 − 6,080 = 1,220, of which 240 in January → 980; C reverses its 5 (full
    # refund larger than what was deferred) → −5; D 28 × 30 = 840. Total 2,095.
    assert feb["earned_revenue"] == 2095
    # March: A 31 × 10 = 310; D 31 × 30 = 930 → 1,240.
    assert months["2026-03"]["earned_revenue"] == 1240
    # Claims: nothing paid in February (Tokyo time); ¥5,000 in March:
    # loss ratio 5,000 / 1,240 = 4.03225... → 4.0323.
    assert (feb["claims_paid"], months["2026-03"]["claims_paid"]) == (0, 5000)
    assert months["2026-03"]["loss_ratio"] == 4.0323
    total = report["total"]
    # Closing deferred at Mar 31: A 3,650 − 81 × 10 = 2,840; D 10,950 − 121 × 30 = 7,320.
    assert total["deferred_revenue"] == 10160
    assert total["earned_revenue"] == 1395 + 2095 + 1240 == 4730
    # Identity over the period: 10,020 + 13,930 − 9,060 − 4,730 = 10,160.
    assert (total["deferred_opening"] + total["gross_sales"] - total["refunds"]
            - total["earned_revenue"]) == total["deferred_revenue"]
    # Loss ratio over the quarter: 5,000 / 4,730 = 1.05708... → 1.0571.
    assert (total["claims_paid"], total["payouts"], total["loss_ratio"]) == (5000, 1, 1.0571)
    # Cancellation rate: 2 cancelled / 3 sold.
    assert total["cancellation_rate"] == round(2 / 3, 4)
    cats = {r["category"]: r for r in report["by_category"]}
    # Electronics: sold A + C = 6,630; refunds 2,980; earned A 810 + C 0 + D 2,700 = 3,510.
    assert (cats["electronics"]["gross_sales"], cats["electronics"]["refunds"],
            cats["electronics"]["earned_revenue"]) == (6630, 2980, 3510)
    assert (cats["electronics"]["deferred_opening"],
            cats["electronics"]["deferred_revenue"]) == (10020, 10160)
    # Appliances: 7,300 sold, 6,080 refunded, 1,220 earned, nothing left deferred.
    assert (cats["appliances"]["gross_sales"], cats["appliances"]["refunds"],
            cats["appliances"]["earned_revenue"], cats["appliances"]["deferred_revenue"]) == (
        7300, 6080, 1220, 0)
    cells = {(r["month"], r["category"]): r for r in report["rows"]}
    assert cells[("2026-02", "appliances")]["earned_revenue"] == 980
    assert cells[("2026-02", "electronics")]["earned_revenue"] == 280 - 5 + 840


def test_usd_cancellation_across_month_ends(db):
    # $49.99 = 4,999 cents for 12 months from 2026-03-15: 365 days.
    plan_sale(db, price=4999, sold_on=date(2026, 3, 15), currency="usd",
              # cancelled 2026-05-02: 48 days used (Mar 15..May 1), 317 unused;
              # refund = 4999 × 317 // 365 = 1,584,683 // 365 = 4,341 cents.
              cancel=(date(2026, 5, 2), 4341))
    report = finance(session=db, period=parse_period("2026-03-01", "2026-05-31"),
                     timezone="America/New_York")
    months = {r["month"]: r for r in report["by_month"]}
    # By Mar 31 (17 days): 4999 × 17 // 365 = 84,983 // 365 = 232.
    assert months["2026-03"]["earned_revenue"] == 232
    # By Apr 30 (47 days): 4999 × 47 // 365 = 234,953 // 365 = 643 → April 643 − 232 = 411.
    assert months["2026-04"]["earned_revenue"] == 411
    assert months["2026-04"]["deferred_revenue"] == 4999 - 643
    # On May 2 the rest is earned: 4,999 − 4,341 = 658 in all → May 658 − 643 = 15
    # (of which May 1 alone: 4999 × 48 // 365 = 657, i.e. 14).
    assert months["2026-05"]["earned_revenue"] == 15
    assert months["2026-05"]["refunds"] == 4341
    assert report["total"]["deferred_revenue"] == 0
    assert report["total"]["earned_revenue"] == 658
