"""Retention and LTV on a small known history, figures computed by hand (JPY and USD)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.report_history import plan_sale
from warranty.orders.imports import ExternalOrderIn, import_orders
from warranty.reports import Context, parse_period, run_report


def _external(db, currency, *orders):
    """Imported orders: (ref, email, date, total)."""
    import_orders(session=db, currency=currency, orders=[
        ExternalOrderIn(order_ref=ref, email=email, purchase_date=day, total_amount=total)
        for ref, email, day, total in orders])
    db.commit()


@pytest.mark.parametrize("currency", ["jpy", "usd"])
def test_repeat_rates_cohorts_and_ltv(db, settings, currency):
    # Ann and Cat bought a plan with their first purchase: product 50,000 + plan 3,000.
    plan_sale(db, price=3000, product_price=50000, sold_on=date(2025, 1, 10),
              email="ann@example.com", currency=currency)
    plan_sale(db, price=3000, product_price=50000, sold_on=date(2025, 2, 5),
              email="cat@example.com", currency=currency)
    _external(db, currency,
              ("A2", "ann@example.com", date(2025, 2, 20), 10000),   # 41 days later
              ("A3", "ann@example.com", date(2025, 12, 1), 20000),   # 325 days later
              ("B1", "bob@example.com", date(2025, 1, 25), 8000),    # Bob: no plan
              ("B2", "bob@example.com", date(2025, 7, 1), 12000),    # 157 days later
              ("D1", "dan@example.com", date(2025, 3, 10), 6000),    # Dan: no plan, once
              ("E1", "eve@example.com", date(2024, 12, 20), 7000),   # Eve: before the cohorts
              ("E2", "eve@example.com", date(2026, 4, 1), 7000))     # last order: obs. end
    ctx = Context(session=db, settings=settings.model_copy(update={"currency": currency}),
                  period=parse_period("2025-01-01", "2025-03-31"))
    result = run_report("retention", ctx)
    rows = {(r["group"], r["cohort"]): r for r in result.rows}
    assert result.extra["observed_to"] == "2026-04-01"  # everyone observed ≥ 365 days

    plan = rows[("with_plan", "all")]
    # Orders: Ann 3, Cat 1; value 53,000 + 10,000 + 20,000 + 53,000 = 136,000 → AOV 34,000.
    assert (plan["customers"], plan["orders"], plan["average_order_value"]) == (2, 4, 34000)
    # Ann came back within 90 days (41), Cat never: 1 of 2 at 90, 180 and 365 days.
    assert (plan["repeat_90_rate"], plan["repeat_180_rate"], plan["repeat_365_rate"]) == (
        0.5, 0.5, 0.5)
    # Ann's cohort (2025-01): she bought again in month 1 (Feb) and month 11 (Dec).
    jan = rows[("with_plan", "2025-01")]
    assert (jan["retention_m1"], jan["retention_m2"], jan["retention_m11"]) == (1.0, 0.0, 1.0)
    # LTV: purchases in year one 3 + 1 = 4 over 2 customers = 2 a year; r = 1/2 →
    # years retained 1 / (1 − 1/2) = 2; LTV = 34,000 × 0.3 × 2 × 2 = 40,800.
    ltv = result.extra["ltv"]["with_plan"]
    assert (ltv["purchases_per_year"], ltv["years_retained"], ltv["ltv"]) == (2.0, 2.0, 40800)

    none = rows[("without_plan", "all")]
    # Bob 2 orders + Dan 1: 26,000 / 3 = 8,666.67 → 8,666 (rounded down).
    assert (none["customers"], none["orders"], none["average_order_value"]) == (2, 3, 8666)
    # Bob came back after 157 days: not within 90, within 180 and 365.
    assert (none["repeat_90_rate"], none["repeat_180_rate"], none["repeat_365_rate"]) == (
        0.0, 0.5, 0.5)
    assert rows[("without_plan", "2025-01")]["retention_m6"] == 1.0  # Bob in July
    # LTV: 3 purchases in year one / 2 = 1.5 a year; 2 years; 8,666 × 0.3 × 1.5 × 2
    # = 8,666 × 0.9 = 7,799.4 → 7,799.
    assert result.extra["ltv"]["without_plan"]["ltv"] == 7799
