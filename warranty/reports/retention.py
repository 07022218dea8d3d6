"""Retention: repeat purchases, monthly cohorts and LTV, for customers with and without a plan.

Definitions (documented in the README):
- a customer is an email; a purchase is a paid (or later refunded) order, external ones
  included; post-purchase plan orders are part of the purchase they cover, not new purchases;
- the cohort is the month of a customer's first purchase; the report's period selects the
  customers whose first purchase falls in it; their later orders are followed up to the last
  purchase date in the database (the observation end);
- a customer "with a plan" bought at least one plan for their first purchase (with it, or
  through the post-purchase link);
- repeat-purchase rate at N days: among customers observed for N days after their first
  purchase, the share who bought again on a later day within N days;
- cohort retention at month k: share of the cohort who bought in calendar month cohort + k;
- LTV = average order value × gross margin × purchases per year × years retained, where
  purchases per year is the mean number of purchases in the first 365 days (customers observed
  for a year), and years retained = 1 / (1 - r) with r the 365-day repeat-purchase rate: each
  year a customer comes back with probability r, so the expected number of years they buy in is
  the geometric sum 1 + r + r² + ... (capped at 10 years; 1 year when nobody came back).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from warranty.core.money import pro_rata
from warranty.customers.facts import COHORT_MONTHS, purchases
from warranty.db.sql import month_of
from warranty.orders.models import Order
from warranty.reports.registry import Context, Result, report
from warranty.reports.revenue import ratio
from warranty.rollups.models import RetentionRollup

WINDOWS = (90, 180, 365)
MAX_YEARS = 10
PLAN_GROUPS = ("with_plan", "without_plan")
ARM_GROUPS = ("treatment", "holdout", "no_visitor")
SUMS = ("customers", "orders", "value", "year_one_orders",
        *[f"{p}_{d}" for d in WINDOWS for p in ("eligible", "repeat")],
        *[f"m{m}" for m in range(1, COHORT_MONTHS + 1)])
_o, _rr = Order.__table__, RetentionRollup.__table__


@report("retention")
def retention(ctx: Context) -> Result:
    """Repeat-purchase rates, cohort retention and LTV: with and without a plan, and per
    holdout arm (customers whose orders carry an embed visitor id; the rest are "no_visitor").

    Reads the sums of ``customer_facts`` (kept in step with their orders) per first-purchase
    day, plan group and arm from ``retention_rollup``."""
    observed_to = ctx.session.execute(sa.select(sa.func.max(_o.c.purchase_date))
                                      .where(purchases())).scalar() or ctx.period.end
    cells = _cells(ctx, observed_to)
    rows, groups = _table(cells, 0, PLAN_GROUPS, ctx.settings.gross_margin)
    arm_rows, arm_groups = _table(cells, 1, ARM_GROUPS, ctx.settings.gross_margin)
    columns = ["group", "cohort", "customers", "orders", "average_order_value",
               *[f"repeat_{d}_rate" for d in WINDOWS],
               *[f"retention_m{m}" for m in range(1, COHORT_MONTHS + 1)]]
    return Result("retention", ctx.period, ctx.settings.currency, columns,
                  [*rows, *arm_rows], money={"average_order_value"},
                  extra={"observed_to": observed_to.isoformat(),
                         "ltv": {**groups, **arm_groups},
                         "gross_margin": str(ctx.settings.gross_margin)})


def _cells(ctx: Context, observed_to: date) -> dict[tuple[str, str, str], dict]:
    """Summed counts per (plan group, arm group, cohort month) of the period's customers.

    The database sums per cohort month and whether the first-purchase day was observed
    long enough for each window (a matter of that day alone). The sums come from
    ``retention_rollup`` (warranty.rollups.retention): ``customer_facts`` summed per
    (first-purchase day, plan group, arm) by a trigger as each customer's row changes.
    """
    first = _rr.c.first_purchase
    arm_group = sa.func.coalesce(_rr.c.arm, ARM_GROUPS[2])
    month = month_of(first)
    # Observed for N days after the first purchase (by the last purchase date on record):
    # a matter of the first-purchase day alone, so the database groups by it too.
    observed = [sa.case((first <= observed_to - timedelta(days=days), 1), else_=0)
                for days in WINDOWS]
    measures = [sa.func.sum(_rr.c[name]).label(name)
                for name in ("customers", "orders", "value", "year_one")]
    measures += [sa.func.sum(_rr.c[f"back_{days}"]).label(f"back_{days}") for days in WINDOWS]
    measures += [sa.func.sum(_rr.c[f"m{m}"]).label(f"m{m}") for m in range(1, COHORT_MONTHS + 1)]
    stmt = (sa.select(_rr.c.with_plan.label("with_plan"), arm_group.label("arm_group"),
                      month.label("month"),
                      *(flag.label(f"observed_{days}") for flag, days in zip(observed, WINDOWS,
                                                                             strict=True)),
                      *measures)
            .where(first.between(ctx.period.start, ctx.period.end))
            .group_by(_rr.c.with_plan, arm_group, month, *observed)
            .having(sa.func.sum(_rr.c.customers) != 0))
    cells: dict[tuple[str, str, str], dict] = {}
    for row in ctx.session.execute(stmt).mappings():
        key = (PLAN_GROUPS[0] if row["with_plan"] else PLAN_GROUPS[1], row["arm_group"],
               row["month"])
        cell = cells.setdefault(key, dict.fromkeys(SUMS, 0))
        customers = int(row["customers"])
        for name in ("customers", "orders", "value", *[f"m{m}" for m in
                                                       range(1, COHORT_MONTHS + 1)]):
            cell[name] += int(row[name] or 0)
        for days in WINDOWS:
            if row[f"observed_{days}"]:
                cell[f"eligible_{days}"] += customers
                cell[f"repeat_{days}"] += int(row[f"back_{days}"])
        if row["observed_365"]:
            cell["year_one_orders"] += int(row["year_one"] or 0)
    return cells


def _table(cells: dict, position: int, group_names: tuple[str, ...], margin: Decimal):
    """Rows per cohort and a total per group, customers split by key ``position`` of the
    cells (0: plan group, 1: arm); and each group's LTV."""
    by_group: dict[tuple[str, str], dict] = {}
    for key, cell in cells.items():
        target = by_group.setdefault((key[position], key[2]), dict.fromkeys(SUMS, 0))
        for name in SUMS:
            target[name] += cell[name]
    rows, groups = [], {}
    for grp in group_names:
        mine = [dict(by_group[key], grp=grp, cohort=key[1]) for key in sorted(by_group)
                if key[0] == grp]
        total = {"grp": grp, "cohort": "all"}
        for name in SUMS:
            total[name] = sum(c[name] for c in mine)
        for row in [*mine, total]:
            rows.append(_row(row))
        groups[grp] = _ltv(total, margin)
    return rows, groups


def _row(cell: dict) -> dict:
    """A table row from summed counts."""
    customers = int(cell.get("customers") or 0)
    orders = int(cell.get("orders") or 0)
    row = {"group": cell["grp"], "cohort": cell["cohort"], "customers": customers,
           "orders": orders,
           "average_order_value": pro_rata(int(cell.get("value") or 0), 1, orders)
           if orders else None}
    for days in WINDOWS:
        row[f"repeat_{days}_rate"] = ratio(int(cell.get(f"repeat_{days}") or 0),
                                           int(cell.get(f"eligible_{days}") or 0))
    for month in range(1, COHORT_MONTHS + 1):
        row[f"retention_m{month}"] = ratio(int(cell.get(f"m{month}") or 0), customers)
    return row


def _ltv(total: dict, margin: Decimal) -> dict:
    """LTV and its parts for one group (exact fractions; money rounded down once)."""
    orders, value = total["orders"], total["value"]
    eligible, repeat = total["eligible_365"], total["repeat_365"]
    if not orders or not eligible:
        return {"average_order_value": pro_rata(value, 1, orders) if orders else None,
                "purchases_per_year": None, "years_retained": None, "ltv": None,
                "customers_observed_a_year": eligible}
    aov = pro_rata(value, 1, orders)
    per_year = Fraction(total["year_one_orders"], eligible)
    r = Fraction(repeat, eligible)
    years = min(Fraction(MAX_YEARS), 1 / (1 - r)) if r < 1 else Fraction(MAX_YEARS)
    factor = Fraction(margin) * per_year * years
    return {"average_order_value": aov, "purchases_per_year": round(float(per_year), 4),
            "years_retained": round(float(years), 4), "repeat_365_rate": round(float(r), 4),
            "ltv": pro_rata(aov, factor.numerator, factor.denominator),
            "customers_observed_a_year": eligible}
